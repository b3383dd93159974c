//! How a step of `up` is declared: one entry in the `declare_steps!` table
//! in `steps/mod.rs` gives its kind, the name its ids and the state file
//! use, which subjects get it, its summary column, what it waits for and
//! how its job is made (after omicron's `declare_saga_actions!` and
//! Talos's sequencer phase lists: the table is the order, read top to
//! bottom). Everything else — parsing ids, the planner, the summary's
//! columns, the trace attributes — is derived from it.

use super::targets::{AddonRef, ClusterRef, HostRef, NodeRef};
use super::{Scope, UpContext};
use crate::orchestrator::graph::StepJob;
use std::sync::Arc;

/// Which subjects of a run get a step of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// The host, once, when the topology manages the mirrors ([`HostRef`]).
    HostMirrors,
    /// The host, once, when the topology manages the backups' object store.
    HostObjectStore,
    /// Every node of the run, `--nodes-only` runs included.
    Node,
    /// Every worker of each cluster the run builds.
    Worker,
    /// Each cluster the run builds: those whose control plane is among the
    /// run's nodes (`--only` selects whole clusters).
    Cluster,
    /// Each catalogue add-on of each cluster the run builds (by the
    /// cluster's role, see [`crate::addons::catalogue`]).
    Addon,
}

impl Per {
    /// Whether the subject is a cluster or one of its add-ons (else a node).
    pub const fn is_cluster(self) -> bool {
        matches!(self, Per::Cluster | Per::Addon)
    }

    /// Whether a run of `scope` has steps of this sort (the mirrors serve
    /// the nodes' prerequisites, so `--nodes-only` runs them too; the
    /// object store serves only the add-ons).
    pub fn in_scope(self, scope: Scope) -> bool {
        matches!(self, Per::HostMirrors | Per::Node) || scope == Scope::Clusters
    }
}

/// Which steps a dependency names, seen from the step's own subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// The same node or cluster.
    Same,
    /// The host's step of that kind, if the run has one (a node waits for
    /// the mirrors only when the topology manages them).
    Host,
    /// The subject's cluster (a node's own; a cluster is its own).
    OwnCluster,
    /// The control plane of the subject's cluster.
    ControlPlane,
    /// Every worker of the subject's cluster in the run.
    Workers,
    /// The add-ons of the subject's cluster that its catalogue entry
    /// depends on (add-on steps only).
    Dependencies,
}

/// How a kind's job is made, from the subject resolved at planning.
#[derive(Clone, Copy)]
pub enum Job {
    Host(fn(Arc<UpContext>, HostRef) -> Arc<dyn StepJob>),
    Node(fn(Arc<UpContext>, NodeRef) -> Arc<dyn StepJob>),
    Cluster(fn(Arc<UpContext>, ClusterRef) -> Arc<dyn StepJob>),
    Addon(fn(Arc<UpContext>, AddonRef) -> Arc<dyn StepJob>),
}

/// Declares `StepKind` and everything about each kind, one entry per step
/// in graph order:
///
/// ```text
/// /// doc of the kind
/// Kind = "name", per HostMirrors|HostObjectStore|Node|Worker|Cluster|Addon, header "COLUMN",
///     after [OtherKind on Same|Host|OwnCluster|ControlPlane|Workers|Dependencies, …],
///     job |ctx, subject| Arc::new(TheJob::new(ctx, subject));
/// ```
///
/// `job` gets a [`HostRef`] for `per Host…`, a [`NodeRef`] for `per Node`/`Worker`, a [`ClusterRef`] for
/// `per Cluster`, an [`AddonRef`] for `per Addon`; a mismatch does not compile.
macro_rules! declare_steps {
    (@job HostMirrors $job:expr) => {
        $crate::orchestrator::steps::declare::Job::Host($job)
    };
    (@job HostObjectStore $job:expr) => {
        $crate::orchestrator::steps::declare::Job::Host($job)
    };
    (@job Node $job:expr) => {
        $crate::orchestrator::steps::declare::Job::Node($job)
    };
    (@job Worker $job:expr) => {
        $crate::orchestrator::steps::declare::Job::Node($job)
    };
    (@job Cluster $job:expr) => {
        $crate::orchestrator::steps::declare::Job::Cluster($job)
    };
    (@job Addon $job:expr) => {
        $crate::orchestrator::steps::declare::Job::Addon($job)
    };
    ($(
        $(#[$doc:meta])*
        $kind:ident = $name:literal, per $per:ident, header $header:literal,
            after [$($dep:ident on $on:ident),* $(,)?],
            job $job:expr;
    )+) => {
        /// What a step does. Declared, with everything about it, in the
        /// table in `steps/mod.rs` (see [`declare`]); the order of the
        /// variants is the table's.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum StepKind {
            $($(#[$doc])* $kind,)+
        }

        impl StepKind {
            /// Every kind in graph order: the summary's column order.
            pub const ALL: &'static [StepKind] = &[$(StepKind::$kind),+];

            /// The kind's name in step ids and `up-state.json`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(StepKind::$kind => $name,)+
                }
            }

            /// The kind named `name`, if any.
            pub fn from_name(name: &str) -> Option<StepKind> {
                match name {
                    $($name => Some(StepKind::$kind),)+
                    _ => None,
                }
            }

            /// Which subjects get a step of this kind.
            pub const fn per(self) -> $crate::orchestrator::steps::declare::Per {
                match self {
                    $(StepKind::$kind => $crate::orchestrator::steps::declare::Per::$per,)+
                }
            }

            /// The summary table's column header (short: a node's row
            /// with every column fits 80 characters).
            pub const fn header(self) -> &'static str {
                match self {
                    $(StepKind::$kind => $header,)+
                }
            }

            /// What a step of this kind waits for, in order.
            pub const fn after(
                self,
            ) -> &'static [(StepKind, $crate::orchestrator::steps::declare::On)] {
                match self {
                    $(StepKind::$kind => &[
                        $((StepKind::$dep, $crate::orchestrator::steps::declare::On::$on)),*
                    ],)+
                }
            }

            /// How a step of this kind gets its job.
            fn job(self) -> $crate::orchestrator::steps::declare::Job {
                match self {
                    $(StepKind::$kind => declare_steps!(@job $per $job),)+
                }
            }
        }
    };
}

pub(crate) use declare_steps;

impl std::fmt::Display for super::StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind reads as its name (the summary's `-o json`).
impl serde::Serialize for super::StepKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A kind equals its name, so state-file readers can ask
/// `id.kind() == "launch"`.
impl PartialEq<str> for super::StepKind {
    fn eq(&self, name: &str) -> bool {
        self.as_str() == name
    }
}

impl PartialEq<&str> for super::StepKind {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}
