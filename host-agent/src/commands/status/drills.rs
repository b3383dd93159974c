//! `hostctl status`'s drill lines: when each contract was last proven by a
//! failure drill (`hostctl verify --drill NAME`), from the results the
//! drills recorded under `$HOSTCTL_HOME/drills/`.

use super::StatusView;
use crate::commands::drill::outcome_word;
use crate::verify::drill::record::DrillStore;
use crate::verify::drill::{DrillName, Outcome};
use serde::Serialize;
use std::path::Path;

/// One drill's last result.
#[derive(Debug, Serialize)]
pub struct DrillLine {
    pub drill: DrillName,
    pub outcome: Outcome,
    /// RFC 3339.
    pub finished_at: String,
    /// What it proves when it passes.
    pub proves: &'static [&'static str],
}

/// Adds the last result of every drill that ever ran in this home.
pub fn with_drills(mut v: StatusView, home: &Path) -> StatusView {
    let store = DrillStore::new(home);
    v.drills = DrillName::ALL
        .iter()
        .filter_map(|d| store.last(*d).ok().flatten())
        .map(|r| DrillLine {
            drill: r.drill,
            outcome: r.outcome,
            finished_at: r.finished_at,
            proves: r.drill.proves(),
        })
        .collect();
    v
}

/// The table's lines.
pub fn lines(drills: &[DrillLine]) -> Vec<String> {
    drills
        .iter()
        .map(|d| {
            format!(
                "drill {}: {} at {} ({} {})",
                d.drill.as_str(),
                outcome_word(d.outcome),
                d.finished_at,
                match d.outcome {
                    Outcome::Passed => "proved",
                    _ => "did not prove",
                },
                d.proves.join(", ")
            )
        })
        .collect()
}
