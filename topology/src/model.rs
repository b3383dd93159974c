//! The topology: what clusters and VMs `hostctl` builds.
//!
//! The model is plain data with public fields so other crates and tests can
//! build one directly; whether it makes sense is decided by validation, not by
//! the types, because a user's file must be able to express every mistake in
//! order to be told about all of them.

use crate::address::Address;
use crate::units::ByteSize;
use crate::version::KubeVersion;
use ipnet::Ipv4Net;
use serde::{Serialize, Serializer};
use std::net::IpAddr;

/// The `apiVersion` every topology file carries, so a future format can be
/// told apart and converted instead of misread.
pub const API_VERSION: &str = "hostctl.dev/v1alpha1";
/// The `kind` every topology file carries.
pub const KIND: &str = "Topology";

/// The whole environment: the node network, the host agent, the clusters and
/// their VMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The network the VMs live on.
    pub network: Network,
    /// Where the host agent listens and how nodes reach it.
    pub host_agent: HostAgent,
    /// The Kubernetes clusters, in the order they are created.
    pub clusters: Vec<Cluster>,
    /// Every VM of every cluster (names are global: they are VM names).
    pub nodes: Vec<Node>,
    /// Package and image caches on the host, if any (none by default).
    pub mirrors: Option<crate::mirror::Mirrors>,
    /// The object store and Velero (`backups: { managed: true }`).
    pub backups: Option<crate::backups::Backups>,
    /// Optional trace export settings (`telemetry:`).
    pub telemetry: Option<crate::telemetry::Telemetry>,
    /// Optional observability choices (`observability:`): k8sgpt's backend.
    pub observability: Option<crate::observability::Observability>,
}

/// The node network as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// The subnet the topology was written for (the spec's 192.168.64.0/24).
    pub cidr: Ipv4Net,
    /// Whether host numbers follow the provider's real subnet.
    pub addressing: Addressing,
}

/// How the declared subnet relates to the one the provider hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    /// Host numbers are placed in the subnet the provider reports (Multipass
    /// DHCP decides it; it moved from 192.168.64.0/24 to 192.168.252.0/24).
    #[default]
    Provider,
    /// `network.cidr` is the network; a provider reporting another one is an error.
    Fixed,
}

/// The host agent's place on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostAgent {
    /// The address nodes dial: the host's side of the VM bridge (host number 1 by default).
    pub address: Address,
    /// The gRPC port (7443 by default).
    pub port: u16,
    /// The address the host agent binds on the host itself; `None` (the
    /// default): the node network's host address, the one nodes dial (and
    /// loopback), not every interface. `0.0.0.0` asks for every interface.
    pub listen: Option<IpAddr>,
}

/// What a cluster is for; decides which platform add-ons it gets later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterRole {
    /// Platform services (Vault, observability, backup, ArgoCD); at most one.
    Mgmt,
    /// Application workloads.
    App,
}

/// One Kubernetes cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// DNS-1123 label; also the Cilium Cluster Mesh name and kubeconfig context.
    pub name: String,
    /// mgmt or app.
    pub role: ClusterRole,
    /// The kubeadm version installed on its nodes.
    pub kubernetes_version: KubeVersion,
    /// Pod addresses; unique across clusters because Cluster Mesh routes them.
    pub pod_cidr: Ipv4Net,
    /// Service addresses.
    pub service_cidr: Ipv4Net,
    /// The MetalLB L2 pool, inside the node network.
    pub metallb_pool: Pool,
}

/// An inclusive range of node-network addresses for MetalLB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// First address of the range.
    pub start: Address,
    /// Last address of the range (inclusive).
    pub end: Address,
}

/// A node's part in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    /// Runs `kubeadm init`; exactly one per cluster (no HA control plane).
    ControlPlane,
    /// Runs `kubeadm join`.
    Worker,
}

/// One VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// The VM name and Kubernetes node name.
    pub name: String,
    /// The name of the cluster it belongs to.
    pub cluster: String,
    /// control-plane or worker.
    pub role: NodeRole,
    /// Its address on the node network.
    pub address: Address,
    /// vCPUs given to the VM.
    pub cpus: u32,
    /// Memory given to the VM.
    pub memory: ByteSize,
    /// Disk given to the VM.
    pub disk: ByteSize,
}

impl Topology {
    /// The clusters in creation order.
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// All nodes of all clusters.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The cluster called `name`.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The nodes of cluster `cluster`, control plane and workers, in file order.
    pub fn nodes_of<'a>(&'a self, cluster: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes.iter().filter(move |n| n.cluster == cluster)
    }

    /// The node that runs `kubeadm init` for `cluster` (the first one, if a
    /// topology that failed validation has several).
    pub fn control_plane(&self, cluster: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.cluster == cluster && n.role == NodeRole::ControlPlane)
    }

    /// The nodes that `kubeadm join` `cluster`.
    pub fn workers<'a>(&'a self, cluster: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes_of(cluster)
            .filter(|n| n.role == NodeRole::Worker)
    }

    /// The management cluster, if there is one.
    pub fn mgmt_cluster(&self) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.role == ClusterRole::Mgmt)
    }

    /// k8sgpt's LLM backend, when the topology chooses one (k8sgpt is off
    /// otherwise).
    pub fn k8sgpt(&self) -> Option<&crate::observability::K8sgpt> {
        self.observability.as_ref().and_then(|o| o.k8sgpt.as_ref())
    }

    /// Whether hostctl runs the object store and Velero
    /// (`backups: { managed: true }`).
    pub fn managed_backups(&self) -> bool {
        self.backups.as_ref().is_some_and(|b| b.managed)
    }

    /// Whether hostctl runs the mirrors (Harbor and Nexus on the host's
    /// Docker, `mirrors: { managed: true }`).
    pub fn managed_mirrors(&self) -> bool {
        self.mirrors.as_ref().is_some_and(|m| m.managed)
    }

    /// Total memory of all VMs, for the host capacity check.
    pub fn total_memory(&self) -> u64 {
        self.nodes
            .iter()
            .fold(0u64, |sum, n| sum.saturating_add(n.memory.bytes()))
    }
}

/// The on-disk shape: the header first, then the body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    api_version: &'static str,
    kind: &'static str,
    network: &'a Network,
    host_agent: &'a HostAgent,
    clusters: &'a [Cluster],
    nodes: &'a [Node],
}

/// Serializes as the topology file (with `apiVersion`/`kind`), so JSON output
/// and the YAML file describe the same document.
impl Serialize for Topology {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Document {
            api_version: API_VERSION,
            kind: KIND,
            network: &self.network,
            host_agent: &self.host_agent,
            clusters: &self.clusters,
            nodes: &self.nodes,
        }
        .serialize(s)
    }
}
