//! `hostctl up` as a graph of named steps (ARCHITECTURE.md, "Provisioning
//! as a graph"): per node render → launch → enrol → prerequisites, later
//! kubeadm, CNI and add-ons. Independent steps run in parallel; every
//! transition is persisted so a rerun after a failure, a crash or Ctrl-C
//! carries on from what is done and never launches a machine twice.
//!
//! - [`graph`]: step names, the [`StepJob`] trait, the validated DAG.
//! - [`executor`]: runs a graph (parallelism, failure isolation, Ctrl-C).
//! - [`state`]: `$HOSTCTL_HOME/up-state.json` and its rules.
//! - [`progress`]: one line per node on a terminal, log lines otherwise,
//!   and the summary with per-step times.
//! - [`steps`]: the real jobs (thin: they call the provider, the daemon
//!   and the node) and [`steps::plan`], which builds `up`'s graph.

pub mod executor;
pub mod graph;
pub mod progress;
pub mod state;
pub mod steps;

pub use executor::{Executor, Observer, Outcome, RunReport, StepResult};
pub use graph::{Graph, GraphError, StepError, StepId, StepJob, StepMessages};
pub use state::{STATE_FILE, StateStore, StepRecord, StepStatus, UpState};
