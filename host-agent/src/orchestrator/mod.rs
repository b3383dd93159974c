//! `hostctl up` as a graph of named steps (ARCHITECTURE.md, "Provisioning
//! as a graph"): per node render → launch → enrol → prerequisites, then
//! per cluster kubeadm, kubeconfig, CNI, joins, nodes Ready and add-ons. Independent steps run in parallel; every
//! transition is persisted so a rerun after a failure, a crash or Ctrl-C
//! carries on from what is done and never launches a machine twice.
//!
//! - [`step_id`]: a step's identity, `kind/subject` ([`StepKind`] and a
//!   node or a cluster).
//! - [`error`]: [`StepError`], a failure with its causes.
//! - [`graph`]: the [`StepJob`] trait and the validated DAG.
//! - [`executor`]: runs a graph (parallelism, failure isolation, Ctrl-C).
//! - [`state`]: `$HOSTCTL_HOME/up-state.json` and its rules.
//! - [`progress`]: one line per node on a terminal, log lines otherwise,
//!   and the summary with per-step times.
//! - [`steps`]: the declared steps of `up` (the one place a step is
//!   added), their jobs (thin: they call the provider, the daemon and the
//!   node) and [`steps::plan`], which builds `up`'s graph.

pub mod error;
pub mod executor;
pub mod graph;
pub mod progress;
pub mod state;
pub mod step_id;
pub mod steps;

pub use error::StepError;
pub use executor::{Executor, Observer, Outcome, RunReport, StepResult};
pub use graph::{Graph, GraphError, StepJob, StepMessages};
pub use state::{STATE_FILE, StateStore, StepRecord, StepStatus, UpState};
pub use step_id::{ClusterName, NodeName, StepId, StepIdError, Subject};
pub use steps::StepKind;
