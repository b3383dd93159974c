//! What a person sees while `up` runs: on a terminal, one line per node
//! with its current step (indicatif); otherwise (CI, pipes, `-o json`) plain
//! timestamped log lines on stderr; at the end, a summary with every step's
//! outcome and time. Failures are always printed in full as they happen.

use super::executor::{Observer, Outcome, RunReport};
use super::graph::{StepId, StepMessages};
use crate::output::Table;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
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
}

/// One spinner line per subject (node), showing its current step.
pub struct Bars {
    multi: MultiProgress,
    lines: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            lines: Mutex::new(BTreeMap::new()),
        }
    }

    fn line(&self, subject: &str) -> ProgressBar {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lines
            .entry(subject.to_owned())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                if let Ok(style) =
                    ProgressStyle::with_template("{spinner} {prefix:<16} {wide_msg} {elapsed:>4}")
                {
                    bar.set_style(style);
                }
                bar.set_prefix(subject.to_owned());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl StepMessages for Bars {
    fn message(&self, step: &StepId, text: &str) {
        self.line(step.subject())
            .set_message(format!("{}: {text}", step.kind()));
    }
}

impl Observer for Bars {
    fn started(&self, step: &StepId) {
        self.line(step.subject())
            .set_message(format!("{}…", step.kind()));
    }

    fn finished(&self, step: &StepId, outcome: &Outcome, elapsed: Duration) {
        let bar = self.line(step.subject());
        let text = format!("{} {}", step.kind(), describe(outcome, elapsed));
        if outcome.is_success() {
            bar.set_message(text);
        } else {
            // Failures stay readable above the bars.
            let _ = self.multi.println(format!("{}: {text}", step.subject()));
            bar.set_message(text);
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        let lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for bar in lines.values() {
            bar.finish();
        }
    }
}

fn describe(outcome: &Outcome, elapsed: Duration) -> String {
    match outcome {
        Outcome::Done => format!("done in {:.1} s", elapsed.as_secs_f64()),
        Outcome::Failed(e) => format!("failed after {:.1} s: {e}", elapsed.as_secs_f64()),
        Outcome::Blocked { by } => format!("not run: {by} failed"),
        other => other.label().to_owned(),
    }
}

/// `HH:MM:SS` UTC, enough to line up logs without a date library.
fn clock(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// One row of the summary: a subject and its steps in graph order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRow {
    pub subject: String,
    pub steps: Vec<SummaryStep>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryStep {
    pub step: String,
    pub outcome: String,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The report grouped by subject, for `-o json|yaml` and the table.
pub fn summary(report: &RunReport, kinds: &[&str]) -> Vec<SummaryRow> {
    let mut rows: BTreeMap<String, Vec<SummaryStep>> = BTreeMap::new();
    for r in report.results.values() {
        rows.entry(r.id.subject().to_owned())
            .or_default()
            .push(SummaryStep {
                step: r.id.kind().to_owned(),
                outcome: r.outcome.label().to_owned(),
                seconds: r.elapsed.as_secs_f64(),
                error: match &r.outcome {
                    Outcome::Failed(e) => Some(e.0.clone()),
                    _ => None,
                },
            });
    }
    let rank = |k: &str| kinds.iter().position(|x| *x == k).unwrap_or(kinds.len());
    rows.into_iter()
        .map(|(subject, mut steps)| {
            steps.sort_by_key(|s| rank(&s.step));
            SummaryRow { subject, steps }
        })
        .collect()
}

/// NODE then one column per step kind: `1.2s`, `ok` (already done), or the
/// outcome.
pub fn summary_table(rows: &[SummaryRow], kinds: &[&str]) -> Table {
    let mut headers = vec!["NODE".to_owned()];
    headers.extend(kinds.iter().map(|k| k.to_uppercase()));
    let mut t = Table::new(headers);
    for row in rows {
        let mut cells = vec![row.subject.clone()];
        for kind in kinds {
            let cell = row.steps.iter().find(|s| s.step == *kind).map_or_else(
                || "-".to_owned(),
                |s| match s.outcome.as_str() {
                    "done" => format!("{:.1}s", s.seconds),
                    "already done" => "ok".to_owned(),
                    other => other.to_owned(),
                },
            );
            cells.push(cell);
        }
        t.row(cells);
    }
    t
}
