//! What a person sees while `up` runs: on a terminal, one line per node
//! or cluster with the step running there ([`bars`]); otherwise (CI, pipes,
//! `-o json`) plain timestamped log lines on stderr; at the end, a summary
//! with every step's outcome and time ([`summary`]). Failures are always
//! printed in full as they happen.

mod bars;
mod summary;

pub use summary::{Group, SummaryRow, SummaryStep, summary, summary_tables};

use super::StepId;
use super::executor::{Observer, Outcome};
use super::graph::StepMessages;
use bars::Bars;
use std::io::IsTerminal;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Picks the display: bars when stdout is a terminal and carries the
/// table output, log lines otherwise.
pub fn for_output(table_output: bool) -> Box<dyn Observer> {
    if table_output && std::io::stdout().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(LogLines)
    }
}

/// Plain, timestamped lines on stderr (stdout may carry JSON).
pub struct LogLines;

impl LogLines {
    fn line(text: std::fmt::Arguments<'_>) {
        eprintln!("{} {text}", clock(SystemTime::now()));
    }
}

impl StepMessages for LogLines {
    fn message(&self, step: &StepId, text: &str) {
        LogLines::line(format_args!("{}: {}: {text}", step.subject(), step.kind()));
    }
}

impl Observer for LogLines {
    fn started(&self, step: &StepId) {
        LogLines::line(format_args!("{}: {} started", step.subject(), step.kind()));
    }

    fn finished(&self, step: &StepId, outcome: &Outcome, elapsed: Duration) {
        LogLines::line(format_args!(
            "{}: {} {}",
            step.subject(),
            step.kind(),
            describe(outcome, elapsed)
        ));
    }

    fn interrupted(&self, waiting: &[StepId], grace: Duration) {
        LogLines::line(format_args!("{}", interrupted_text(waiting, grace)));
    }
}

/// What a Ctrl-C that has to wait says.
fn interrupted_text(waiting: &[StepId], grace: Duration) -> String {
    let names: Vec<String> = waiting.iter().map(ToString::to_string).collect();
    format!(
        "interrupted: waiting up to {} s for {} (must not be cut off halfway); Ctrl-C again to abort",
        grace.as_secs(),
        names.join(", ")
    )
}

pub(crate) fn describe(outcome: &Outcome, elapsed: Duration) -> String {
    match outcome {
        Outcome::Done => format!("done in {:.1} s", elapsed.as_secs_f64()),
        Outcome::Failed(e) => format!("failed after {:.1} s: {}", elapsed.as_secs_f64(), e.text()),
        Outcome::Blocked { by } => format!("not run: {by} did not complete"),
        other => other.label().to_owned(),
    }
}

/// `HH:MM:SS` UTC, enough to line up logs without a date library.
fn clock(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}
