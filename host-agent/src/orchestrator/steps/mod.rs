//! The real steps of `up` and the graph they form. Each job is thin: it
//! calls the provider, the daemon's Control client or the node's
//! Provisioning service, and turns their errors into a [`StepError`] that
//! says what failed (the executor puts the step's id in front of it).
//!
//! On the host, when the topology manages them: `mirrors/host` and
//! `object-store/host`. Per node:
//! `render/<node>` → `launch/<node>` → `enrol/<node>` →
//! `prerequisites/<node>` (which also waits for the mirrors). Nodes do not
//! wait for each other. Then per
//! cluster: kubeadm init, kubeconfig, CNI, joins, nodes Ready, base
//! add-ons, then one step per catalogue add-on — all declared in the table
//! below ([`shape`] applies it to a run).
//!
//! # How to add a step
//!
//! 1. Write its job in a file of its own here: a type implementing
//!    [`StepJob`](crate::orchestrator::StepJob), made from the
//!    `Arc<UpContext>` and the [`NodeRef`] or
//!    [`ClusterRef`](targets::ClusterRef) it acts on (resolved at planning: it never looks a
//!    node up by name). Its errors say what went wrong, not which node.
//! 2. Add one entry to the `declare_steps!` table below, at its place in
//!    graph order: kind, name, `per` (which subjects get it), summary
//!    header, what it waits for (`after`, relative to its subject), and how
//!    its job is made.
//!
//! Nothing else changes: ids, `up-state.json`, the planner, the summary's
//! columns and the trace attributes all follow from the entry. A name
//! once released is in users' state files: never rename one.

mod addon_step;
mod addons;
pub mod cluster;
mod cni;
pub mod declare;
mod enrol;
mod kubeadm_init;
mod kubeadm_join;
pub mod kubeconfig;
mod launch;
pub mod mirrors;
pub mod node_client;
pub mod object_store;
mod prereq;
mod ready;
mod render;
pub mod rpc;
pub mod shape;
pub mod targets;
pub mod userdata;

use super::graph::{Graph, GraphError};
use super::{StepError, StepId};
use crate::daemon::ControlClient;
use crate::node_config::{NodeAgentConfig, NodeConfigInput};
use crate::provider::Provider;
use declare::{Job, declare_steps};
use shape::Target;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use targets::{NodeRef, TargetError, Targets};
use topology::Resolved;

declare_steps! {
    /// `mirrors/host`: Harbor and Nexus up and configured, when the
    /// topology manages them (the nodes pull through them from their
    /// prerequisites on).
    Mirrors = "mirrors", per HostMirrors, header "MIRRORS",
        after [],
        job |ctx, host| Arc::new(mirrors::StartMirrors::new(ctx, host));
    /// `object-store/host`: the backups' object store up with its buckets
    /// and keys, when the topology manages backups (Velero's locations).
    ObjectStore = "object-store", per HostObjectStore, header "STORE",
        after [],
        job |ctx, host| Arc::new(object_store::StartObjectStore::new(ctx, host));
    /// `render/<node>`: the agent config and user-data, for review and
    /// the size check before any machine is made.
    Render = "render", per Node, header "RENDER",
        after [],
        job |ctx, node| Arc::new(render::Render::new(ctx, node));
    /// `launch/<node>`: the machine exists and runs (never launched twice).
    Launch = "launch", per Node, header "LAUNCH",
        after [Render on Same],
        job |ctx, node| Arc::new(launch::Launch::new(ctx, node));
    /// `enrol/<node>`: its agent is connected over mutual TLS and reports.
    Enrol = "enrol", per Node, header "ENROL",
        after [Launch on Same],
        job |ctx, node| Arc::new(enrol::Enrol::new(ctx, node));
    /// `prerequisites/<node>`: the node prepared itself for kubeadm.
    Prerequisites = "prerequisites", per Node, header "PREREQS",
        after [Enrol on Same, Mirrors on Host],
        job |ctx, node| Arc::new(prereq::Prerequisites::new(ctx, node));
    /// `kubeadm-init/<cluster>`: its control plane initialised.
    KubeadmInit = "kubeadm-init", per Cluster, header "INIT",
        after [Prerequisites on ControlPlane],
        job |ctx, cluster| Arc::new(kubeadm_init::KubeadmInit::new(ctx, cluster));
    /// `kubeconfig/<cluster>`: its admin kubeconfig, kept and merged.
    Kubeconfig = "kubeconfig", per Cluster, header "KUBECONFIG",
        after [KubeadmInit on Same],
        job |ctx, cluster| Arc::new(kubeconfig::Kubeconfig::new(ctx, cluster));
    /// `cni/<cluster>`: the Gateway API CRDs and Cilium.
    Cni = "cni", per Cluster, header "CNI",
        after [KubeadmInit on Same],
        job |ctx, cluster| Arc::new(cni::Cni::new(ctx, cluster));
    /// `kubeadm-join/<worker>`: the worker joined its cluster.
    KubeadmJoin = "kubeadm-join", per Worker, header "JOIN",
        after [Prerequisites on Same, KubeadmInit on OwnCluster],
        job |ctx, node| Arc::new(kubeadm_join::KubeadmJoin::new(ctx, node));
    /// `nodes-ready/<cluster>`: every node of the run is Ready.
    NodesReady = "nodes-ready", per Cluster, header "READY",
        after [Cni on Same, KubeadmJoin on Workers],
        job |ctx, cluster| Arc::new(ready::NodesReady::new(ctx, cluster));
    /// `addons/<cluster>`: MetalLB and hostctl's base manifests.
    Addons = "addons", per Cluster, header "ADDONS",
        after [NodesReady on Same],
        job |ctx, cluster| Arc::new(addons::Addons::new(ctx, cluster));
    /// `addon/<cluster>/<name>`: one catalogue add-on installed and ready
    /// (`crate::addons`), after the base, the add-ons it depends on and the
    /// object store when there is one (Velero's location comes from it).
    Addon = "addon", per Addon, header "ADDON",
        after [Addons on OwnCluster, Addon on Dependencies, ObjectStore on Host],
        job |ctx, addon| Arc::new(addon_step::AddonStep::new(ctx, addon));
}

/// Everything the steps of one `up` share.
pub struct UpContext {
    /// `$HOSTCTL_HOME`.
    pub home: PathBuf,
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
    /// What `mirrors/host` brings up (planned only for managed mirrors).
    pub host_mirrors: Arc<dyn mirrors::MirrorsUp>,
    /// What `object-store/host` brings up (planned only for managed backups).
    pub host_object_store: Arc<dyn object_store::ObjectStoreUp>,
    /// What the per-cluster steps share (PKI, Helm, manifests, kubeconfigs).
    pub cluster: cluster::ClusterSettings,
}

pub use prereq::Mirrors;

impl UpContext {
    /// The node agent's configuration for `node`, with `token` or the
    /// placeholder when rendering for review.
    fn agent_config(&self, node: &NodeRef, token: Option<String>) -> Result<String, StepError> {
        let layout = self.provider.agent_layout(node.name().as_str());
        let config = NodeAgentConfig::new(NodeConfigInput {
            node: node.name().as_str(),
            cluster: node.cluster().as_str(),
            control_plane: node.is_control_plane(),
            node_address: node.address(),
            host_address: self.resolved.host_agent_address(),
            host_port: self.resolved.host_agent_port(),
            ca_pem: &self.ca_pem,
            token,
            report_interval_seconds: self.report_interval,
            buffer_capacity: self.buffer_capacity,
            layout: &layout,
        })
        .with_kubeadm_binary(self.cluster.kubeadm_binary.as_deref());
        config.to_yaml().map_err(StepError::from_error)
    }

    /// `node`'s user-data around `config`, with the address the provider
    /// wants pinned in it (render and launch share this, so the reviewed
    /// copy is the launched one but for the token).
    async fn user_data(&self, node: &NodeRef, config: &str) -> Result<String, StepError> {
        let name = node.name().as_str();
        let payload = self.payload.get().await.map_err(StepError::from_error)?;
        let address = ipnet::Ipv4Net::new(node.address(), self.resolved.subnet().prefix_len())
            .ok()
            .and_then(|net| self.provider.user_data_address(name, net));
        userdata::render(name, &payload, config, address).map_err(StepError::from_error)
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

/// `up`'s graph and the subjects its steps act on.
pub struct Plan {
    pub graph: Graph,
    /// The run's nodes and the clusters it builds (the trace attributes,
    /// the closing per-cluster lines).
    pub targets: Arc<Targets>,
}

/// `up`'s graph cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Shape(#[from] shape::Unrelated),
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A kind's job takes the other sort of subject. `declare_steps!`
    /// pairs them, so only a hand-made entry could do this; an error
    /// rather than a panic all the same.
    #[error("step {0}'s job is declared for the other sort of subject")]
    JobMismatch(StepId),
}

/// `up`'s graph for `nodes`: the declared steps applied to them.
pub fn plan(ctx: &Arc<UpContext>, nodes: &[String], scope: Scope) -> Result<Plan, PlanError> {
    let targets = Targets::resolve(&ctx.resolved, nodes)?;
    let mut graph = Graph::new();
    for planned in shape::plan_shape(&targets, scope)? {
        let job = match (planned.id.kind().job(), planned.target) {
            (Job::Host(make), Target::Host(host)) => make(ctx.clone(), host),
            (Job::Node(make), Target::Node(node)) => make(ctx.clone(), node),
            (Job::Cluster(make), Target::Cluster(cluster)) => make(ctx.clone(), cluster),
            (Job::Addon(make), Target::Addon(addon)) => make(ctx.clone(), addon),
            _ => return Err(PlanError::JobMismatch(planned.id)),
        };
        graph.add(planned.id, planned.after, job)?;
    }
    Ok(Plan {
        graph,
        targets: Arc::new(targets),
    })
}
