//! The step loop every recovery scenario shares: print each step as
//! `[n/N] <title> … done in <t>`, skip what the record says an earlier run
//! did, stop at the first failure with a message that says the same
//! command continues from there, and close with the whole recovery's time
//! against the scenario's RTO. A scenario supplies only its steps
//! ([`Scenario`]).

use crate::recover::record::Record;
use crate::recover::{human, verdict};
use std::time::{Duration, Instant, SystemTime};

/// One recovery scenario's steps.
#[async_trait::async_trait(?Send)]
pub(crate) trait Scenario {
    /// The steps, in order: the record's id and the printed title.
    fn steps(&self) -> &'static [(&'static str, &'static str)];
    /// The spec's recovery-time objective.
    fn rto(&self) -> Duration;
    /// Runs step `id`. `Ok(Some(source))` records what the recovery
    /// restores from (chosen once, by the step that chooses it).
    async fn run(&mut self, id: &str) -> anyhow::Result<Option<String>>;
    /// Called for a step an earlier run did, with the record, so later
    /// steps can pick up what it chose (default: nothing to pick up).
    async fn skipped(&mut self, _id: &str, _record: &Record) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Prints a step's closing line.
fn step_line(n: usize, of: usize, title: &str, how: &str) -> anyhow::Result<()> {
    crate::stdout::line(format_args!("[{n}/{of}] {title} … {how}"))
}

/// Runs `scenario`'s steps on `record` (opened by the caller, which has
/// already refused what must be refused before anything is touched), then
/// prints the verdict and removes the record.
pub(crate) async fn run(
    mut record: Record,
    what: &str,
    scenario: &mut dyn Scenario,
) -> anyhow::Result<()> {
    if record.resumed() {
        crate::stdout::line(format_args!(
            "resuming the recovery of {what} started {} ago ({}; --restart starts over)",
            human(record.elapsed(SystemTime::now())),
            record.file().display()
        ))?;
    }
    let steps = scenario.steps();
    for (i, (id, title)) in steps.iter().enumerate() {
        let n = i + 1;
        if let Some(took) = record.done_in(id) {
            scenario.skipped(id, &record).await?;
            step_line(
                n,
                steps.len(),
                title,
                &format!("done in an earlier run ({})", human(took)),
            )?;
            continue;
        }
        let started = Instant::now();
        let outcome = scenario.run(id).await;
        let took = started.elapsed();
        match outcome {
            Ok(chosen) => {
                if let Some(source) = chosen {
                    record.choose(&source);
                }
                record.complete(id, took)?;
                step_line(n, steps.len(), title, &format!("done in {}", human(took)))?;
            }
            Err(e) => {
                step_line(
                    n,
                    steps.len(),
                    title,
                    &format!("failed after {}", human(took)),
                )?;
                return Err(e.context(format!(
                    "step {n} ({title}) of recovering {what}; the same command again \
                     continues from this step with the same source"
                )));
            }
        }
    }
    crate::stdout::line(verdict(record.elapsed(SystemTime::now()), scenario.rto()))?;
    record.finish()?;
    Ok(())
}
