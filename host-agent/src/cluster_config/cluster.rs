//! The per-cluster facts every renderer needs, looked up once and checked:
//! the cluster, its control plane and that node's stable address, and the
//! cluster's Cluster Mesh id.

use super::error::{K8sError, Result};
use std::net::Ipv4Addr;
use topology::{Cluster, IpRange, KubeVersion, Node, NodeRole, Resolved};

/// The API server's port on every control plane (kubeadm's default, made
/// explicit because Cilium's `k8sServicePort` and the join endpoint must agree).
pub const API_SERVER_PORT: u16 = 6443;

/// The mgmt cluster's services with a fixed LoadBalancer address: Vault
/// (hostctl and the app clusters' issuers and stores), Thanos Receive (the
/// app clusters' Prometheus agents), Loki (their log shippers), Tempo
/// (`hostctl up`'s own traces) and Grafana (the user's browser). Fixed
/// because their clients are configured before the Services exist, and
/// because a DNS name or Gateway on mgmt would be one more thing that has
/// to be up for an app cluster to ship (C1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgmtService {
    Vault,
    Metrics,
    Logs,
    Traces,
    Grafana,
}

impl MgmtService {
    /// In pool order: never reorder (addresses would move); append.
    pub const ALL: [MgmtService; 5] = [
        MgmtService::Vault,
        MgmtService::Metrics,
        MgmtService::Logs,
        MgmtService::Traces,
        MgmtService::Grafana,
    ];

    /// The MetalLB pool's name suffix and the word in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            MgmtService::Vault => "vault",
            MgmtService::Metrics => "metrics",
            MgmtService::Logs => "logs",
            MgmtService::Traces => "traces",
            MgmtService::Grafana => "grafana",
        }
    }

    /// Its distance from the pool's start (the mesh holds the start).
    fn offset(self) -> u32 {
        match self {
            MgmtService::Vault => 1,
            MgmtService::Metrics => 2,
            MgmtService::Logs => 3,
            MgmtService::Traces => 4,
            MgmtService::Grafana => 5,
        }
    }
}

/// The reserved address of `service` on the topology's mgmt cluster, or
/// what to fix (no mgmt cluster, or a pool too small).
pub fn mgmt_service_address(
    resolved: &Resolved,
    service: MgmtService,
) -> std::result::Result<Ipv4Addr, String> {
    let mgmt = resolved
        .topology()
        .mgmt_cluster()
        .ok_or_else(|| "no cluster has role mgmt".to_owned())?;
    let view = ClusterView::new(resolved, &mgmt.name).map_err(|e| e.to_string())?;
    view.service_address(service).ok_or_else(|| {
        format!(
            "cluster {}'s MetalLB pool is too small for the {} address (it needs {} addresses after the mesh's): widen metallbPool",
            mgmt.name,
            service.as_str(),
            service.offset()
        )
    })
}

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

    /// The address Vault's LoadBalancer Service gets on the mgmt cluster
    /// (see [`MgmtService`]). `None` on app clusters and for a pool too
    /// small to hold it.
    pub fn vault_address(&self) -> Option<Ipv4Addr> {
        self.service_address(MgmtService::Vault)
    }

    /// The reserved address of one of mgmt's fixed services: the pool's
    /// address after the mesh's, in [`MgmtService::ALL`] order, so hostctl
    /// and the app clusters can name it before the Service exists. `None`
    /// on app clusters and when the pool is too small.
    pub fn service_address(&self, service: MgmtService) -> Option<Ipv4Addr> {
        let next = Ipv4Addr::from(u32::from(self.pool.start).checked_add(service.offset())?);
        (self.cluster.role == topology::ClusterRole::Mgmt && next <= self.pool.end).then_some(next)
    }

    /// Every reserved address of the pool, in pool order, by what it is for.
    pub fn reserved_addresses(&self) -> Vec<(&'static str, Ipv4Addr)> {
        let mut out = vec![("clustermesh", self.mesh_address())];
        out.extend(
            MgmtService::ALL
                .iter()
                .filter_map(|s| Some((s.as_str(), self.service_address(*s)?))),
        );
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
