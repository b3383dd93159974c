//! The provisioning graph: named steps with declared dependencies. A step is
//! a [`StepJob`]; the graph only knows ids and edges, so the executor can
//! be tested (and benchmarked) with stand-in jobs, and new steps are
//! declared (`steps::declare`) without touching the scheduling.

use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::error::StepError;
use super::step_id::StepId;

/// Where a running step reports what it is doing (a prerequisite's phase,
/// "waiting for enrolment"), shown on its node's progress line.
pub trait StepMessages: Send + Sync {
    fn message(&self, step: &StepId, text: &str);
}

/// One step's work. Both methods must be safe to call again after a crash:
/// the executor calls [`StepJob::satisfied`] before re-running a step that
/// a previous run recorded as started or done.
#[async_trait]
pub trait StepJob: Send + Sync {
    /// Whether the step's effect already holds (the machine exists, the
    /// node is connected). `false` means "run it"; the default suits steps
    /// that are cheap and idempotent.
    async fn satisfied(&self) -> Result<bool, StepError> {
        Ok(false)
    }

    /// Does the work; `messages` feeds the progress line.
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError>;

    /// Whether Ctrl-C may abort the step midway. Steps that create things
    /// (a launch) say no, so an interruption never leaves half a machine.
    fn interruptible(&self) -> bool {
        true
    }
}

/// One node of the graph.
#[derive(Clone)]
pub struct Step {
    pub id: StepId,
    pub after: Vec<StepId>,
    pub job: Arc<dyn StepJob>,
}

/// The graph is not runnable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("step {0} is declared twice")]
    Duplicate(StepId),
    #[error("step {step} depends on {missing}, which is not in the graph")]
    UnknownDependency { step: StepId, missing: StepId },
    #[error("the steps {0:?} depend on each other in a cycle")]
    Cycle(Vec<StepId>),
}

/// A validated set of steps (unique names, known dependencies, no cycle).
#[derive(Clone, Default)]
pub struct Graph {
    steps: BTreeMap<StepId, Step>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Adds a step; dependencies are checked by [`Graph::validate`].
    pub fn add(
        &mut self,
        id: StepId,
        after: Vec<StepId>,
        job: Arc<dyn StepJob>,
    ) -> Result<(), GraphError> {
        if self.steps.contains_key(&id) {
            return Err(GraphError::Duplicate(id));
        }
        self.steps.insert(id.clone(), Step { id, after, job });
        Ok(())
    }

    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.values()
    }

    pub fn get(&self, id: &StepId) -> Option<&Step> {
        self.steps.get(id)
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Checks every dependency exists and there is no cycle (Kahn's
    /// algorithm: whatever cannot be ordered is on or behind a cycle).
    pub fn validate(&self) -> Result<(), GraphError> {
        for step in self.steps.values() {
            if let Some(missing) = step.after.iter().find(|d| !self.steps.contains_key(*d)) {
                return Err(GraphError::UnknownDependency {
                    step: step.id.clone(),
                    missing: missing.clone(),
                });
            }
        }
        let mut waiting: BTreeMap<&StepId, usize> = self
            .steps
            .values()
            .map(|s| (&s.id, s.after.len()))
            .collect();
        let dependents = self.dependents();
        let mut ready: Vec<&StepId> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| *id)
            .collect();
        let mut ordered = 0;
        while let Some(id) = ready.pop() {
            ordered += 1;
            for dep in dependents.get(id).into_iter().flatten() {
                if let Some(n) = waiting.get_mut(dep) {
                    *n -= 1;
                    if *n == 0 {
                        ready.push(dep);
                    }
                }
            }
        }
        if ordered == self.steps.len() {
            Ok(())
        } else {
            Err(GraphError::Cycle(
                waiting
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(id, _)| id.clone())
                    .collect(),
            ))
        }
    }

    /// For each step, the steps that wait for it.
    pub fn dependents(&self) -> BTreeMap<&StepId, BTreeSet<&StepId>> {
        let mut out: BTreeMap<&StepId, BTreeSet<&StepId>> = BTreeMap::new();
        for step in self.steps.values() {
            for dep in &step.after {
                out.entry(dep).or_default().insert(&step.id);
            }
        }
        out
    }

    /// The longest chain of `cost`s through the graph: the least wall time
    /// any executor could need (the benchmark compares against it).
    pub fn critical_path(
        &self,
        cost: impl Fn(&StepId) -> std::time::Duration,
    ) -> std::time::Duration {
        let mut finish: BTreeMap<&StepId, std::time::Duration> = BTreeMap::new();
        let mut remaining: Vec<&Step> = self.steps.values().collect();
        while !remaining.is_empty() {
            let before = remaining.len();
            remaining.retain(|step| {
                let deps: Option<Vec<_>> =
                    step.after.iter().map(|d| finish.get(d).copied()).collect();
                match deps {
                    Some(deps) => {
                        let start = deps.into_iter().max().unwrap_or_default();
                        finish.insert(&step.id, start + cost(&step.id));
                        false
                    }
                    None => true,
                }
            });
            if remaining.len() == before {
                break; // a cycle; validate() reports it
            }
        }
        finish.into_values().max().unwrap_or_default()
    }
}
