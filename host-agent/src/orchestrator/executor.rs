//! Runs a [`Graph`]: every step starts as soon as its dependencies are done
//! (one tokio task per step, nothing serialised that does not depend on
//! something else); a failed step blocks only what depends on it; Ctrl-C
//! stops new steps from starting, aborts the interruptible ones, lets the
//! others (launches) finish within a grace period, and records it all.
//!
//! A failed step's error is recorded and listed as `kind/subject: cause`:
//! the executor names the step ([`failure_text`]), so steps do not.

use super::graph::{Graph, GraphError, StepJob, StepMessages};
use super::state::{StateStore, StepStatus};
use super::{StepError, StepId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
// tokio's clock, so a test can run the graph in virtual time
// (`start_paused`) and check overlap and wall time without real sleeps.
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument as _;

/// How one step ended in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ran and succeeded.
    Done,
    /// A previous run did it and its postcondition still holds.
    AlreadyDone,
    Failed(StepError),
    /// Not run because a step it depends on failed.
    Blocked {
        by: StepId,
    },
    /// Aborted by Ctrl-C.
    Interrupted,
    /// Never started (the run was interrupted first).
    NotStarted,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Done | Outcome::AlreadyDone)
    }

    /// A short word for summaries and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::AlreadyDone => "already done",
            Outcome::Failed(_) => "failed",
            Outcome::Blocked { .. } => "blocked",
            Outcome::Interrupted => "interrupted",
            Outcome::NotStarted => "not started",
        }
    }
}

/// One step's result with its wall time (zero when it did not run).
#[derive(Debug, Clone)]
pub struct StepResult {
    pub id: StepId,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

impl StepResult {
    /// The step's failure as it is persisted and listed at the end of
    /// `up`; `None` unless it failed.
    pub fn failure(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Failed(e) => Some(failure_text(&self.id, e)),
            _ => None,
        }
    }
}

/// `kind/subject: cause: cause …`: a step's error where it stands apart
/// from its step (the state file, the closing list of failures).
pub fn failure_text(id: &StepId, error: &StepError) -> String {
    format!("{id}: {}", error.text())
}

/// Everything a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub results: BTreeMap<StepId, StepResult>,
    pub wall: Duration,
    pub interrupted: bool,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        !self.interrupted && self.results.values().all(|r| r.outcome.is_success())
    }

    /// The steps that failed (not those merely blocked by them).
    pub fn failed(&self) -> Vec<&StepResult> {
        self.results
            .values()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .collect()
    }
}

/// Sees every transition (progress display, logs).
pub trait Observer: StepMessages {
    fn started(&self, step: &StepId);
    fn finished(&self, step: &StepId, outcome: &Outcome, elapsed: Duration);

    /// Ctrl-C arrived: interruptible steps were cancelled; `waiting` are
    /// the steps that must not be cut and get `grace` to finish.
    fn interrupted(&self, _waiting: &[StepId], _grace: Duration) {}

    /// The run is over: a display draws nothing after this (the summary
    /// follows).
    fn close(&self) {}

    // --- tracing (docs/tracing.md) ---
    /// The span a step runs in; the executor records `outcome` and `error`
    /// on it, so a span should declare both (see [`step_span`]).
    fn span(&self, step: &StepId) -> tracing::Span {
        step_span(step, "", "", "", "")
    }
}

/// A step's span: named after the step, with the attributes a provisioning
/// trace is searched by; `outcome` and `error` are filled in at the end.
pub fn step_span(
    step: &StepId,
    cluster: &str,
    provider: &str,
    kubernetes_version: &str,
    role: &str,
) -> tracing::Span {
    tracing::info_span!(
        "step",
        otel.name = %step,
        otel.status_code = tracing::field::Empty,
        step = %step.kind(),
        node = %step.subject(),
        cluster,
        provider,
        kubernetes.version = kubernetes_version,
        role,
        outcome = tracing::field::Empty,
        error = tracing::field::Empty,
    )
}

/// See the module documentation.
pub struct Executor {
    pub store: StateStore,
    pub observer: Arc<dyn Observer>,
    /// How long non-interruptible steps get to finish after Ctrl-C.
    pub grace: Duration,
}

type Finished = (Outcome, Duration);

impl Executor {
    /// Runs the graph until every step has ended. When `cancel` completes
    /// (the first Ctrl-C), interruptible steps are cancelled at once and no
    /// new step starts; the others get the grace period, which `abort` (a
    /// second Ctrl-C) cuts short.
    pub async fn run(
        &self,
        graph: &Graph,
        cancel: impl Future<Output = ()>,
        abort: impl Future<Output = ()>,
    ) -> Result<RunReport, GraphError> {
        graph.validate()?;
        let started = Instant::now();
        let dependents = graph.dependents();
        let mut waiting: BTreeMap<&StepId, usize> =
            graph.steps().map(|s| (&s.id, s.after.len())).collect();
        let mut results: BTreeMap<StepId, StepResult> = BTreeMap::new();
        let mut tasks: JoinSet<Finished> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, (StepId, AbortHandle, bool)> = HashMap::new();

        let ready: Vec<&StepId> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            self.spawn(graph, id, &mut tasks, &mut running);
        }

        tokio::pin!(cancel);
        tokio::pin!(abort);
        let mut aborted = false;
        let mut cancelled = false;
        let mut deadline: Option<Instant> = None;
        loop {
            let joined = tokio::select! {
                biased;
                () = &mut cancel, if !cancelled => {
                    cancelled = true;
                    deadline = Some(Instant::now() + self.grace);
                    let mut waiting = Vec::new();
                    for (id, handle, interruptible) in running.values() {
                        if *interruptible {
                            handle.abort();
                        } else {
                            waiting.push(id.clone());
                        }
                    }
                    if !waiting.is_empty() {
                        waiting.sort();
                        self.observer.interrupted(&waiting, self.grace);
                    }
                    continue;
                }
                () = &mut abort, if cancelled && !aborted => {
                    aborted = true;
                    tasks.abort_all();
                    deadline = None;
                    continue;
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    tasks.abort_all();
                    deadline = None;
                    continue;
                }
                joined = tasks.join_next_with_id() => joined,
            };
            let Some(joined) = joined else { break };
            let (task, (outcome, elapsed)) = match joined {
                Ok((task, finished)) => (task, finished),
                Err(e) => {
                    let outcome = if e.is_cancelled() {
                        Outcome::Interrupted
                    } else {
                        Outcome::Failed(StepError::new("the step panicked"))
                    };
                    (e.id(), (outcome, Duration::ZERO))
                }
            };
            let Some((id, _, _)) = running.remove(&task) else {
                continue;
            };
            self.record(&id, &outcome, elapsed);
            let success = outcome.is_success();
            results.insert(
                id.clone(),
                StepResult {
                    id: id.clone(),
                    outcome,
                    elapsed,
                },
            );
            let Some(id) = graph.get(&id).map(|s| &s.id) else {
                continue;
            };
            if success {
                for next in dependents.get(id).into_iter().flatten() {
                    if let Some(n) = waiting.get_mut(*next) {
                        *n -= 1;
                        if *n == 0 && !cancelled {
                            self.spawn(graph, next, &mut tasks, &mut running);
                        }
                    }
                }
            } else {
                self.block_behind(id, &dependents, &mut results);
            }
        }
        for step in graph.steps() {
            results
                .entry(step.id.clone())
                .or_insert_with(|| StepResult {
                    id: step.id.clone(),
                    outcome: Outcome::NotStarted,
                    elapsed: Duration::ZERO,
                });
        }
        Ok(RunReport {
            results,
            wall: started.elapsed(),
            interrupted: cancelled,
        })
    }

    fn spawn(
        &self,
        graph: &Graph,
        id: &StepId,
        tasks: &mut JoinSet<Finished>,
        running: &mut HashMap<tokio::task::Id, (StepId, AbortHandle, bool)>,
    ) {
        let Some(step) = graph.get(id) else { return };
        let job = step.job.clone();
        let interruptible = job.interruptible();
        let (id, store, observer) = (id.clone(), self.store.clone(), self.observer.clone());
        let key = id.clone();
        let span = observer.span(&id);
        let handle = tasks.spawn(
            async move { run_step(&id, job.as_ref(), &store, observer).await }.instrument(span),
        );
        running.insert(handle.id(), (key, handle, interruptible));
    }

    fn record(&self, id: &StepId, outcome: &Outcome, elapsed: Duration) {
        match outcome {
            Outcome::Done | Outcome::AlreadyDone => self.store.set(id, StepStatus::Done, None),
            Outcome::Failed(e) => {
                self.store
                    .set(id, StepStatus::Failed, Some(failure_text(id, e)));
            }
            Outcome::Interrupted => {
                self.store
                    .set(id, StepStatus::Failed, Some("interrupted".to_owned()));
            }
            Outcome::Blocked { .. } | Outcome::NotStarted => {}
        }
        self.observer.finished(id, outcome, elapsed);
    }

    /// Marks everything downstream of a failed step as blocked by it.
    fn block_behind(
        &self,
        failed: &StepId,
        dependents: &BTreeMap<&StepId, BTreeSet<&StepId>>,
        results: &mut BTreeMap<StepId, StepResult>,
    ) {
        let mut stack: Vec<&StepId> = dependents
            .get(failed)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        while let Some(next) = stack.pop() {
            if results.contains_key(next) {
                continue;
            }
            let outcome = Outcome::Blocked { by: failed.clone() };
            self.store.set(
                next,
                StepStatus::Pending,
                Some(format!("not run: {failed} failed")),
            );
            self.observer.finished(next, &outcome, Duration::ZERO);
            results.insert(
                next.clone(),
                StepResult {
                    id: next.clone(),
                    outcome,
                    elapsed: Duration::ZERO,
                },
            );
            stack.extend(dependents.get(next).into_iter().flatten().copied());
        }
    }
}

/// One step: re-check a step a previous run started or finished, else run it.
async fn run_step(
    id: &StepId,
    job: &dyn StepJob,
    store: &StateStore,
    observer: Arc<dyn Observer>,
) -> Finished {
    let started = Instant::now();
    let prior = store.record(id).map(|r| r.status);
    if matches!(
        prior,
        Some(StepStatus::Done | StepStatus::Running | StepStatus::Failed)
    ) {
        match job.satisfied().await {
            Ok(true) => {
                record_on_span(&Outcome::AlreadyDone);
                return (Outcome::AlreadyDone, started.elapsed());
            }
            Ok(false) => {}
            Err(e) => return (Outcome::Failed(e), started.elapsed()),
        }
    }
    store.set(id, StepStatus::Running, None);
    observer.started(id);
    let outcome = match job.run(id, observer.as_ref()).await {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(e),
    };
    record_on_span(&outcome);
    (outcome, started.elapsed())
}

/// Puts the outcome (and the error) on the step's span.
fn record_on_span(outcome: &Outcome) {
    let span = tracing::Span::current();
    span.record("outcome", outcome.label());
    if let Outcome::Failed(e) = outcome {
        span.record("error", e.text().as_str());
        span.record("otel.status_code", "ERROR");
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
