//! The real steps of `up` and the graph they form. Each job is thin: it
//! calls the provider, the daemon's Control client or the node's
//! Provisioning service, and turns their errors into a [`StepError`] that
//! names the node and the cause.
//!
//! Per node: `render/<node>` → `launch/<node>` → `enrol/<node>` →
//! `prerequisites/<node>`. Nodes do not wait for each other. Then per
//! cluster: kubeadm init, kubeconfig, CNI, joins, nodes Ready, add-ons
//! ([`shape`] has the edges).

mod addons;
pub mod cluster;
mod cni;
mod enrol;
mod kubeadm_init;
mod kubeadm_join;
pub mod kubeconfig;
mod launch;
pub mod node_client;
mod prereq;
mod ready;
mod render;
pub mod rpc;
pub mod shape;
pub mod userdata;

use super::graph::{Graph, GraphError, StepError, StepId, StepJob};
use crate::daemon::ControlClient;
use crate::node_config::{NodeAgentConfig, NodeConfigInput};
use crate::provider::Provider;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use topology::{NodeRole, Resolved};

/// The step kinds in graph order (the summary's columns).
pub const KINDS: &[&str] = &[
    "render",
    "launch",
    "enrol",
    "prerequisites",
    "kubeadm-init",
    "kubeconfig",
    "cni",
    "kubeadm-join",
    "nodes-ready",
    "addons",
];

/// Everything the steps of one `up` share.
pub struct UpContext {
    pub resolved: Resolved,
    pub provider: Arc<dyn Provider>,
    pub control: ControlClient,
    /// The agent-plane CA every node pins.
    pub ca_pem: String,
    pub report_interval: u32,
    pub buffer_capacity: u32,
    /// `$HOSTCTL_HOME/render`: each node's reviewed user-data and config.
    pub render_dir: PathBuf,
    /// The node-agent binary embedded in user-data (loaded once, lazily).
    pub payload: userdata::PayloadSource,
    /// Whether the provider boots a real image from user-data (Multipass);
    /// the local provider takes the agent config directly.
    pub needs_user_data: bool,
    /// How long a launched node gets to enrol and report.
    pub enrol_timeout: Duration,
    /// Dials a node's Node/Provisioning service with the admin identity.
    pub nodes: node_client::NodeDialer,
    /// Optional apt proxy / registry mirror handed to the prerequisites.
    pub mirrors: prereq::Mirrors,
    /// What the per-cluster steps share (PKI, Helm, manifests, kubeconfigs).
    pub cluster: cluster::ClusterSettings,
}

pub use prereq::Mirrors;

impl UpContext {
    /// The node agent's configuration for `name`, with `token` or the
    /// placeholder when rendering for review.
    fn agent_config(&self, name: &str, token: Option<String>) -> Result<String, StepError> {
        let node = self
            .resolved
            .topology()
            .node(name)
            .ok_or_else(|| StepError(format!("{name} is not in the topology")))?;
        let address = self
            .resolved
            .node_ip(name)
            .ok_or_else(|| StepError(format!("{name} has no resolved address")))?;
        let layout = self.provider.agent_layout(name);
        let config = NodeAgentConfig::new(NodeConfigInput {
            node: name,
            cluster: &node.cluster,
            control_plane: node.role == NodeRole::ControlPlane,
            node_address: address,
            host_address: self.resolved.host_agent_address(),
            host_port: self.resolved.host_agent_port(),
            ca_pem: &self.ca_pem,
            token,
            report_interval_seconds: self.report_interval,
            buffer_capacity: self.buffer_capacity,
            layout: &layout,
        })
        .with_kubeadm_binary(self.cluster.kubeadm_binary.as_deref());
        config.to_yaml().map_err(|e| StepError::from_chain(&e))
    }

    /// Node `name`'s user-data around `config`, with the address the
    /// provider wants pinned in it (render and launch share this, so the
    /// reviewed copy is the launched one but for the token).
    async fn user_data(&self, name: &str, config: &str) -> Result<String, StepError> {
        let fail = |e: userdata::UserDataError| {
            StepError(format!("{name}: {}", StepError::from_chain(&e)))
        };
        let payload = self.payload.get().await.map_err(fail)?;
        let address = self
            .resolved
            .node_ip(name)
            .and_then(|ip| ipnet::Ipv4Net::new(ip, self.resolved.subnet().prefix_len()).ok())
            .and_then(|net| self.provider.user_data_address(name, net));
        userdata::render(name, &payload, config, address).map_err(fail)
    }
}

/// How far `up` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Prepared nodes only (`--nodes-only`; the node-plane test suites).
    Nodes,
    /// Everything: the nodes, then each cluster's Kubernetes steps.
    Clusters,
}

/// `up`'s graph for `nodes`.
pub fn plan(ctx: &Arc<UpContext>, nodes: &[String], scope: Scope) -> Result<Graph, GraphError> {
    let mut graph = Graph::new();
    for node in nodes {
        let id = |kind| StepId::new(kind, node);
        graph.add(
            id("render"),
            vec![],
            Arc::new(render::Render::new(ctx.clone(), node)),
        )?;
        graph.add(
            id("launch"),
            vec![id("render")],
            Arc::new(launch::Launch::new(ctx.clone(), node)),
        )?;
        graph.add(
            id("enrol"),
            vec![id("launch")],
            Arc::new(enrol::Enrol::new(ctx.clone(), node)),
        )?;
        graph.add(
            id("prerequisites"),
            vec![id("enrol")],
            Arc::new(prereq::Prerequisites::new(ctx.clone(), node)),
        )?;
    }
    if scope == Scope::Nodes {
        return Ok(graph);
    }
    for planned in shape::cluster_steps(ctx.resolved.topology(), nodes) {
        graph.add(planned.id, planned.after, cluster_job(ctx, planned.job))?;
    }
    Ok(graph)
}

/// The job behind a planned cluster step.
fn cluster_job(ctx: &Arc<UpContext>, job: shape::ClusterJob) -> Arc<dyn StepJob> {
    use shape::ClusterJob as J;
    let ctx = ctx.clone();
    match job {
        J::Init { cluster } => Arc::new(kubeadm_init::KubeadmInit::new(ctx, &cluster)),
        J::Kubeconfig { cluster } => Arc::new(kubeconfig::Kubeconfig::new(ctx, &cluster)),
        J::Cni { cluster } => Arc::new(cni::Cni::new(ctx, &cluster)),
        J::Join { node, cluster } => Arc::new(kubeadm_join::KubeadmJoin::new(ctx, &node, &cluster)),
        J::Ready { cluster, nodes } => Arc::new(ready::NodesReady::new(ctx, &cluster, nodes)),
        J::Addons { cluster } => Arc::new(addons::Addons::new(ctx, &cluster)),
    }
}
