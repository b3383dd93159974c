//! Step spans with the attributes a provisioning trace is searched by
//! (node, cluster, provider, Kubernetes version, role), by wrapping the
//! progress observer the executor already calls. The attributes come from
//! the step's subject as the plan resolved it: a node step gets its node's
//! cluster, version and role, a cluster step its cluster and version.

use std::sync::Arc;
use std::time::Duration;

use topology::NodeRole;

use crate::orchestrator::executor::step_span;
use crate::orchestrator::step_id::ClusterName;
use crate::orchestrator::steps::targets::Targets;
use crate::orchestrator::{Observer, Outcome, StepId, StepMessages, Subject};

/// Delegates progress to `inner` and names each step's span.
pub struct TracedObserver {
    inner: Arc<dyn Observer>,
    targets: Arc<Targets>,
    provider: String,
}

impl TracedObserver {
    pub fn new(inner: Arc<dyn Observer>, targets: Arc<Targets>, provider: &str) -> TracedObserver {
        TracedObserver {
            inner,
            targets,
            provider: provider.to_owned(),
        }
    }
}

impl StepMessages for TracedObserver {
    fn message(&self, step: &StepId, text: &str) {
        self.inner.message(step, text);
    }
}

impl Observer for TracedObserver {
    fn started(&self, step: &StepId) {
        self.inner.started(step);
    }

    fn finished(&self, step: &StepId, outcome: &Outcome, elapsed: Duration) {
        self.inner.finished(step, outcome, elapsed);
    }

    fn interrupted(&self, waiting: &[StepId], grace: Duration) {
        self.inner.interrupted(waiting, grace);
    }

    fn close(&self) {
        self.inner.close();
    }

    fn span(&self, step: &StepId) -> tracing::Span {
        let (cluster, version, role) = match step.subject() {
            Subject::Host => ("", None, None),
            Subject::Node(name) => match self.targets.node(name) {
                Some(node) => (
                    node.cluster().as_str(),
                    Some(node.kubernetes_version()),
                    Some(match node.role() {
                        NodeRole::ControlPlane => "control-plane",
                        _ => "worker",
                    }),
                ),
                None => ("", None, None),
            },
            Subject::Addon(addon) => match self.targets.cluster(&ClusterName::new(addon.cluster()))
            {
                Some(cluster) => (
                    cluster.name().as_str(),
                    Some(cluster.kubernetes_version()),
                    None,
                ),
                None => ("", None, None),
            },
            Subject::Cluster(name) => match self.targets.cluster(name) {
                Some(cluster) => (
                    cluster.name().as_str(),
                    Some(cluster.kubernetes_version()),
                    None,
                ),
                None => ("", None, None),
            },
        };
        let version = version.map(|v| v.to_string());
        step_span(
            step,
            cluster,
            &self.provider,
            version.as_deref().unwrap_or(""),
            role.unwrap_or(""),
        )
    }
}
