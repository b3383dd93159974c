//! Runs the steps in order, resumably, streaming one `ProgressEvent` per
//! step (`prerequisites/<step>`, message `already done` or `done`) and a
//! final event with `done` or the error of the step that failed.
//!
//! A step is skipped when the record says it completed with today's inputs
//! and its check still passes; otherwise its record is dropped, it is
//! applied, checked again, and recorded. A failure stops the run with the
//! failed step unrecorded, so the next run resumes there.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use proto::v1::progress_event::Outcome;
use proto::v1::{Error as ApiError, NodeMeta, OperationDone, ProgressEvent};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::record::Record;
use super::steps::{Ctx, Step};
use super::{Inputs, PrereqError};
use crate::exec::Runner;

/// The message of a step that was already in place.
pub const ALREADY_DONE: &str = "already done";
/// The message of a step that was applied.
pub const APPLIED: &str = "done";
/// The phase of the final event of a successful run.
pub const PHASE: &str = "prerequisites";

/// Where and how the steps run on this node.
#[derive(Clone)]
pub struct Prerequisites {
    /// The node's `/` (the config's `root`).
    pub root: PathBuf,
    /// Holds `prereq-state.json`.
    pub state_dir: PathBuf,
    pub runner: Arc<dyn Runner>,
    pub meta: NodeMeta,
}

/// A run that stopped at a step.
#[derive(Debug, thiserror::Error)]
#[error("step {step} failed: {source}")]
pub struct StepFailed {
    pub step: &'static str,
    #[source]
    pub source: PrereqError,
}

type Events = mpsc::Sender<Result<ProgressEvent, tonic::Status>>;

impl Prerequisites {
    /// Runs every step, sending progress to `events` (a caller that went
    /// away does not stop the run: a half-finished apt install is worse
    /// than a finished one nobody watched). `Ok(true)` when every step was
    /// already in place.
    pub async fn run(&self, inputs: &Inputs, events: &Events) -> Result<bool, StepFailed> {
        let ctx = Ctx {
            root: &self.root,
            inputs,
            runner: self.runner.as_ref(),
        };
        let opened = crate::state::StateDir::open(&self.state_dir)
            .map_err(PrereqError::from)
            .and_then(|_| Record::load(&self.state_dir));
        let mut record = match opened {
            Ok(r) => r,
            Err(source) => return Err(self.fail(events, Step::ALL[0], source).await),
        };
        let total = Step::ALL.len() as f32;
        let mut all_in_place = true;
        for (i, step) in Step::ALL.into_iter().enumerate() {
            let span = tracing::info_span!("prerequisite", step = step.name());
            let outcome = self
                .one(step, &ctx, &mut record, events, i as f32 * 100.0 / total)
                .instrument(span)
                .await;
            let percent = (i + 1) as f32 * 100.0 / total;
            match outcome {
                Ok(true) => {
                    self.send(events, step_phase(step), ALREADY_DONE, percent, None)
                        .await
                }
                Ok(false) => {
                    all_in_place = false;
                    self.send(events, step_phase(step), APPLIED, percent, None)
                        .await;
                }
                Err(source) => return Err(self.fail(events, step, source).await),
            }
        }
        let message = if all_in_place {
            "all prerequisites were already in place"
        } else {
            "prerequisites in place"
        };
        let done = Outcome::Done(OperationDone {
            already_done: all_in_place,
        });
        self.send(events, PHASE.to_owned(), message, 100.0, Some(done))
            .await;
        Ok(all_in_place)
    }

    /// One step; `Ok(true)` when it was already in place.
    async fn one(
        &self,
        step: Step,
        ctx: &Ctx<'_>,
        record: &mut Record,
        events: &Events,
        percent: f32,
    ) -> Result<bool, PrereqError> {
        let inputs = step.inputs(ctx.inputs);
        if record.is_done(step.name(), &inputs) && step.check(ctx).await? {
            tracing::info!("already in place");
            return Ok(true);
        }
        self.send(events, step_phase(step), "applying", percent, None)
            .await;
        record.forget(step.name())?;
        step.apply(ctx).await?;
        if !step.check(ctx).await? {
            return Err(PrereqError::NotInPlace(step.name()));
        }
        record.mark_done(step.name(), inputs)?;
        tracing::info!("applied");
        Ok(false)
    }

    async fn fail(&self, events: &Events, step: Step, source: PrereqError) -> StepFailed {
        let failed = StepFailed {
            step: step.name(),
            source,
        };
        tracing::warn!(step = failed.step, "prerequisites failed: {failed}");
        let error = Outcome::Error(ApiError {
            code: failed.source.code() as i32,
            message: failed.to_string(),
            detail: failed.source.detail(),
        });
        let message = failed.to_string();
        self.send(events, step_phase(step), &message, -1.0, Some(error))
            .await;
        failed
    }

    async fn send(
        &self,
        events: &Events,
        phase: String,
        message: &str,
        percent: f32,
        outcome: Option<Outcome>,
    ) {
        let event = ProgressEvent {
            meta: Some(self.meta.clone()),
            phase,
            message: message.to_owned(),
            percent,
            at: Some(proto::timestamp(SystemTime::now())),
            outcome,
        };
        let _ = events.send(Ok(event)).await;
    }
}

fn step_phase(step: Step) -> String {
    format!("{PHASE}/{}", step.name())
}
