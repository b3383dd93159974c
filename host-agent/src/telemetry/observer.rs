//! Step spans with the attributes a provisioning trace is searched by
//! (node, cluster, provider, Kubernetes version, role), by wrapping the
//! progress observer the executor already calls.

use std::sync::Arc;
use std::time::Duration;

use topology::{NodeRole, Resolved};

use crate::orchestrator::executor::step_span;
use crate::orchestrator::{Observer, Outcome, StepId, StepMessages};

/// Delegates progress to `inner` and names each step's span.
pub struct TracedObserver {
    inner: Arc<dyn Observer>,
    resolved: Resolved,
    provider: String,
}

impl TracedObserver {
    pub fn new(inner: Arc<dyn Observer>, resolved: &Resolved, provider: &str) -> TracedObserver {
        TracedObserver {
            inner,
            resolved: resolved.clone(),
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
        let topology = self.resolved.topology();
        let node = topology.node(step.subject());
        // A step's subject is a node, or a cluster for cluster-wide steps.
        let cluster_name = node.map_or(step.subject(), |n| n.cluster.as_str());
        let cluster = topology.cluster(cluster_name);
        let version = cluster.map(|c| c.kubernetes_version.to_string());
        let role = node.map(|n| match n.role {
            NodeRole::ControlPlane => "control-plane",
            _ => "worker",
        });
        step_span(
            step,
            cluster.map_or("", |_| cluster_name),
            &self.provider,
            version.as_deref().unwrap_or(""),
            role.unwrap_or(""),
        )
    }
}
