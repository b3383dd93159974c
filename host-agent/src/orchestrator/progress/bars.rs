//! The terminal display: one line per subject (node or cluster). A line
//! shows the step running there now and what it last said ("cni: waiting
//! for https://…:6443/readyz"), with that step's own elapsed time, and stops
//! spinning when nothing runs on it; a finished line keeps its last result.
//! [`Bars::close`] clears everything so the summary is printed whole below
//! (the last redraw used to overwrite it).

use super::{describe, interrupted_text};
use crate::orchestrator::executor::{Observer, Outcome};
use crate::orchestrator::graph::StepMessages;
use crate::orchestrator::{StepId, StepKind};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// A running line: spinner, subject, what runs, its time.
const RUNNING: &str = "{spinner} {prefix:<16} {wide_msg} {elapsed:>4}";
/// A quiet line: nothing runs there.
const IDLE: &str = "  {prefix:<16} {wide_msg}";

/// One subject's line and the steps running on it, oldest first.
struct Line {
    bar: ProgressBar,
    running: Vec<(StepKind, String)>,
}

pub struct Bars {
    multi: MultiProgress,
    lines: Mutex<BTreeMap<String, Line>>,
}

impl Bars {
    pub fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            lines: Mutex::new(BTreeMap::new()),
        }
    }

    /// Runs `change` on `subject`'s line (made on first use) and redraws it.
    fn with_line(&self, subject: &str, change: impl FnOnce(&mut Line)) {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let line = lines.entry(subject.to_owned()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_prefix(subject.to_owned());
            Line {
                bar,
                running: Vec::new(),
            }
        });
        change(line);
    }
}

fn style(template: &str) -> Option<ProgressStyle> {
    ProgressStyle::with_template(template).ok()
}

/// Shows the newest running step, or goes quiet with `idle_text`.
fn show(line: &Line, idle_text: Option<String>) {
    match line.running.last() {
        Some((kind, text)) => line.bar.set_message(format!("{kind}: {text}")),
        None => {
            line.bar.disable_steady_tick();
            if let Some(s) = style(IDLE) {
                line.bar.set_style(s);
            }
            if let Some(text) = idle_text {
                line.bar.set_message(text);
            }
            line.bar.tick();
        }
    }
}

impl StepMessages for Bars {
    fn message(&self, step: &StepId, text: &str) {
        self.with_line(step.subject().name(), |line| {
            if let Some(entry) = line.running.iter_mut().find(|(k, _)| *k == step.kind()) {
                entry.1 = text.to_owned();
            }
            show(line, Some(format!("{}: {text}", step.kind())));
        });
    }
}

impl Observer for Bars {
    fn started(&self, step: &StepId) {
        self.with_line(step.subject().name(), |line| {
            line.running.push((step.kind(), "running".to_owned()));
            if let Some(s) = style(RUNNING) {
                line.bar.set_style(s);
            }
            line.bar.reset_elapsed();
            line.bar.enable_steady_tick(Duration::from_millis(120));
            show(line, None);
        });
    }

    fn finished(&self, step: &StepId, outcome: &Outcome, elapsed: Duration) {
        let text = format!("{} {}", step.kind(), describe(outcome, elapsed));
        if !outcome.is_success() {
            // Failures stay readable above the lines.
            let _ = self.multi.println(format!("{}: {text}", step.subject()));
        }
        self.with_line(step.subject().name(), |line| {
            line.running.retain(|(k, _)| *k != step.kind());
            show(line, Some(text));
        });
    }

    fn interrupted(&self, waiting: &[StepId], grace: Duration) {
        let _ = self.multi.println(interrupted_text(waiting, grace));
    }

    fn close(&self) {
        let lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for line in lines.values() {
            line.bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.close();
    }
}
