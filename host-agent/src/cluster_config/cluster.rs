//! The per-cluster facts every renderer needs, looked up once and checked:
//! the cluster, its control plane and that node's stable address, and the
//! cluster's Cluster Mesh id.

use super::error::{K8sError, Result};
use std::net::Ipv4Addr;
use topology::{Cluster, IpRange, KubeVersion, Node, NodeRole, Resolved};

/// The API server's port on every control plane (kubeadm's default, made
/// explicit because Cilium's `k8sServicePort` and the join endpoint must agree).
pub const API_SERVER_PORT: u16 = 6443;

/// A cluster of a resolved topology with its control plane located.
#[derive(Debug, Clone, Copy)]
pub struct ClusterView<'a> {
    /// The cluster as declared.
    pub cluster: &'a Cluster,
    /// Its control-plane node.
    pub control_plane: &'a Node,
    /// The control plane's stable address (API server endpoint).
    pub control_plane_ip: Ipv4Addr,
    /// Its MetalLB pool, resolved.
    pub pool: IpRange,
    /// Cilium `cluster.id`: the 1-based position in the topology, so ids are
    /// unique and stable as long as clusters are only appended.
    pub id: u8,
}

impl<'a> ClusterView<'a> {
    /// Looks `name` up in `resolved`.
    pub fn new(resolved: &'a Resolved, name: &str) -> Result<Self> {
        let topology = resolved.topology();
        let position = topology
            .clusters()
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| K8sError::UnknownCluster(name.to_owned()))?;
        let cluster = &topology.clusters()[position];
        let control_plane = topology
            .control_plane(name)
            .ok_or_else(|| K8sError::NoControlPlane(name.to_owned()))?;
        let control_plane_ip = node_ip(resolved, control_plane)?;
        let pool = resolved
            .pool(name)
            .ok_or_else(|| K8sError::NoPool(name.to_owned()))?;
        let id = u8::try_from(position + 1).map_err(|_| K8sError::ClusterIdOutOfRange {
            cluster: name.to_owned(),
            position: position + 1,
        })?;
        Ok(ClusterView {
            cluster,
            control_plane,
            control_plane_ip,
            pool,
            id,
        })
    }

    /// Every cluster of `resolved`, in topology order.
    pub fn all(resolved: &'a Resolved) -> Result<Vec<Self>> {
        resolved
            .topology()
            .clusters()
            .iter()
            .map(|c| Self::new(resolved, &c.name))
            .collect()
    }

    /// The cluster's name.
    pub fn name(&self) -> &'a str {
        &self.cluster.name
    }

    /// `ip:port` of the API server: the `controlPlaneEndpoint` and the
    /// workers' discovery endpoint.
    pub fn api_endpoint(&self) -> String {
        format!("{}:{API_SERVER_PORT}", self.control_plane_ip)
    }

    /// The address the clustermesh-apiserver's LoadBalancer Service gets:
    /// the first address of the cluster's MetalLB pool, reserved for it so
    /// peers can be configured before the Service exists.
    pub fn mesh_address(&self) -> Ipv4Addr {
        self.pool.start
    }

    /// The address Vault's LoadBalancer Service gets on the mgmt cluster:
    /// the pool's second address, reserved like the mesh's so hostctl and
    /// the app clusters' issuers and secret stores can name it before the
    /// Service exists. `None` on app clusters (and for a one-address pool).
    pub fn vault_address(&self) -> Option<Ipv4Addr> {
        let next = Ipv4Addr::from(u32::from(self.pool.start).checked_add(1)?);
        (self.cluster.role == topology::ClusterRole::Mgmt && next <= self.pool.end).then_some(next)
    }

    /// Every reserved address of the pool, in pool order, by what it is for.
    pub fn reserved_addresses(&self) -> Vec<(&'static str, Ipv4Addr)> {
        let mut out = vec![("clustermesh", self.mesh_address())];
        out.extend(self.vault_address().map(|ip| ("vault", ip)));
        out
    }

    /// kubeadm's `kubernetesVersion`. A topology without a patch means "the
    /// newest patch of the minor"; kubeadm resolves the `stable-1.<minor>`
    /// label itself (falling back to its own version when offline).
    pub fn kubeadm_version(&self) -> String {
        kubeadm_version(self.cluster.kubernetes_version)
    }
}

/// See [`ClusterView::kubeadm_version`].
pub fn kubeadm_version(version: KubeVersion) -> String {
    match version.patch {
        Some(_) => version.to_string(),
        None => format!("stable-1.{}", version.minor),
    }
}

/// The stable address of `node`.
pub fn node_ip(resolved: &Resolved, node: &Node) -> Result<Ipv4Addr> {
    resolved
        .node_ip(&node.name)
        .ok_or_else(|| K8sError::NoAddress(node.name.clone()))
}

/// Whether `node` runs `kubeadm init`.
pub fn is_control_plane(node: &Node) -> bool {
    node.role == NodeRole::ControlPlane
}
