//! What `up`'s steps act on, resolved once when the graph is planned: the
//! host's services the topology manages ([`HostRef`]), each
//! node of the run with its cluster, role, address and machine size, and
//! each cluster the run builds with its control plane, its nodes and its
//! add-ons ([`AddonRef`]). A step holds its [`NodeRef`], [`ClusterRef`] or
//! [`AddonRef`], so it never looks a node
//! up by name (and cannot ask about one outside the topology); a node
//! missing from the topology or without an address fails the plan, before
//! anything runs.

use crate::addons::{Addon, Available};
use crate::orchestrator::step_id::{AddonSubject, ClusterName, NodeName};
use std::net::Ipv4Addr;
use std::sync::Arc;
use topology::{ClusterRole, KubeVersion, NodeRole, Resolved};

/// What the topology has the host run for the clusters: the mirrors
/// (`mirrors/host`, before the nodes' prerequisites) and the backups'
/// object store (`object-store/host`, before the add-ons).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRef {
    mirrors: bool,
    object_store: bool,
}

impl HostRef {
    /// Whether Harbor and Nexus run on the host (`mirrors: {managed: true}`).
    pub fn mirrors(&self) -> bool {
        self.mirrors
    }

    /// Whether the object store runs on the host (`backups: {managed: true}`).
    pub fn object_store(&self) -> bool {
        self.object_store
    }
}

/// A node of the run, as the topology resolved it.
#[derive(Debug, Clone)]
pub struct NodeRef(Arc<NodeInfo>);

#[derive(Debug)]
struct NodeInfo {
    name: NodeName,
    cluster: ClusterName,
    address: Ipv4Addr,
    kubernetes_version: KubeVersion,
    spec: topology::Node,
}

impl NodeRef {
    pub fn name(&self) -> &NodeName {
        &self.0.name
    }

    pub fn cluster(&self) -> &ClusterName {
        &self.0.cluster
    }

    pub fn role(&self) -> NodeRole {
        self.0.spec.role
    }

    pub fn is_control_plane(&self) -> bool {
        self.role() == NodeRole::ControlPlane
    }

    /// Its stable address on the node network.
    pub fn address(&self) -> Ipv4Addr {
        self.0.address
    }

    /// Its cluster's Kubernetes version.
    pub fn kubernetes_version(&self) -> KubeVersion {
        self.0.kubernetes_version
    }

    /// The topology's entry (machine size and the rest).
    pub fn spec(&self) -> &topology::Node {
        &self.0.spec
    }
}

/// A cluster the run builds.
#[derive(Debug, Clone)]
pub struct ClusterRef(Arc<ClusterInfo>);

#[derive(Debug)]
struct ClusterInfo {
    name: ClusterName,
    role: ClusterRole,
    kubernetes_version: KubeVersion,
    control_plane: NodeRef,
    members: Vec<NodeRef>,
    /// Whether the topology has a mgmt cluster (what some add-ons need).
    mgmt_exists: bool,
    /// Whether the topology asks for backups (the host's object store and
    /// Velero on every cluster, `backups: { managed: true }`).
    backups: bool,
}

impl ClusterRef {
    pub fn name(&self) -> &ClusterName {
        &self.0.name
    }

    pub fn kubernetes_version(&self) -> KubeVersion {
        self.0.kubernetes_version
    }

    pub fn role(&self) -> ClusterRole {
        self.0.role
    }

    /// The catalogue's add-ons for this cluster's role, in catalogue order.
    pub fn addons(&self) -> Vec<AddonRef> {
        Addon::for_role(
            self.role(),
            Available::new(self.0.mgmt_exists, self.0.backups),
        )
        .map(|addon| AddonRef {
            subject: AddonSubject::new(self.name().as_str(), addon.name),
            cluster: self.clone(),
            addon,
        })
        .collect()
    }

    pub fn control_plane(&self) -> &NodeRef {
        &self.0.control_plane
    }

    /// Its nodes in this run, in topology order.
    pub fn members(&self) -> &[NodeRef] {
        &self.0.members
    }

    /// Its nodes in this run but the control plane.
    pub fn workers(&self) -> impl Iterator<Item = &NodeRef> {
        self.members().iter().filter(|n| !n.is_control_plane())
    }
}

/// One catalogue add-on on a cluster the run builds.
#[derive(Debug, Clone)]
pub struct AddonRef {
    cluster: ClusterRef,
    addon: &'static Addon,
    subject: AddonSubject,
}

impl AddonRef {
    pub fn cluster(&self) -> &ClusterRef {
        &self.cluster
    }

    pub fn addon(&self) -> &'static Addon {
        self.addon
    }

    /// `cluster/addon`, the step's subject.
    pub fn subject(&self) -> &AddonSubject {
        &self.subject
    }
}

/// A node of the run cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("node {0} is not in the topology")]
    UnknownNode(String),
    #[error("node {0} has no resolved address")]
    NoAddress(String),
    #[error("node {node} belongs to cluster {cluster}, which is not in the topology")]
    UnknownCluster { node: String, cluster: String },
}

/// The run's nodes and the clusters it builds.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    host: HostRef,
    nodes: Vec<NodeRef>,
    clusters: Vec<ClusterRef>,
}

impl Targets {
    /// Resolves the run's `nodes` (names from the topology) against it.
    pub fn resolve(resolved: &Resolved, nodes: &[String]) -> Result<Targets, TargetError> {
        let topology = resolved.topology();
        let refs = nodes
            .iter()
            .map(|name| {
                let spec = topology
                    .node(name)
                    .ok_or_else(|| TargetError::UnknownNode(name.clone()))?;
                let address = resolved
                    .node_ip(name)
                    .ok_or_else(|| TargetError::NoAddress(name.clone()))?;
                let cluster =
                    topology
                        .cluster(&spec.cluster)
                        .ok_or_else(|| TargetError::UnknownCluster {
                            node: name.clone(),
                            cluster: spec.cluster.clone(),
                        })?;
                Ok(NodeRef(Arc::new(NodeInfo {
                    name: NodeName::new(name),
                    cluster: ClusterName::new(&cluster.name),
                    address,
                    kubernetes_version: cluster.kubernetes_version,
                    spec: spec.clone(),
                })))
            })
            .collect::<Result<Vec<NodeRef>, TargetError>>()?;
        let clusters = topology
            .clusters()
            .iter()
            .filter_map(|cluster| {
                let members: Vec<NodeRef> = refs
                    .iter()
                    .filter(|n| n.cluster().as_str() == cluster.name)
                    .cloned()
                    .collect();
                let control_plane = members.iter().find(|n| n.is_control_plane())?.clone();
                Some(ClusterRef(Arc::new(ClusterInfo {
                    name: ClusterName::new(&cluster.name),
                    role: cluster.role,
                    kubernetes_version: cluster.kubernetes_version,
                    control_plane,
                    members,
                    mgmt_exists: topology.mgmt_cluster().is_some(),
                    backups: topology.managed_backups(),
                })))
            })
            .collect();
        let host = HostRef {
            mirrors: topology.managed_mirrors(),
            object_store: topology.managed_backups(),
        };
        Ok(Targets {
            host,
            nodes: refs,
            clusters,
        })
    }

    /// The host's part of the run.
    pub fn host(&self) -> &HostRef {
        &self.host
    }

    /// The run's nodes, in the order given.
    pub fn nodes(&self) -> &[NodeRef] {
        &self.nodes
    }

    /// The clusters the run builds, in topology order.
    pub fn clusters(&self) -> &[ClusterRef] {
        &self.clusters
    }

    pub fn node(&self, name: &NodeName) -> Option<&NodeRef> {
        self.nodes.iter().find(|n| n.name() == name)
    }

    pub fn cluster(&self, name: &ClusterName) -> Option<&ClusterRef> {
        self.clusters.iter().find(|c| c.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved() -> Resolved {
        topology::default_topology().resolve(None).unwrap()
    }

    #[test]
    fn a_cluster_is_built_only_with_its_control_plane() {
        let r = resolved();
        let t = Targets::resolve(&r, &["app1-cp".into(), "app1-worker-0".into()]).unwrap();
        let names: Vec<&str> = t.clusters().iter().map(|c| c.name().as_str()).collect();
        assert_eq!(names, ["app1"]);
        let app1 = &t.clusters()[0];
        assert_eq!(app1.control_plane().name().as_str(), "app1-cp");
        let workers: Vec<&str> = app1.workers().map(|n| n.name().as_str()).collect();
        assert_eq!(workers, ["app1-worker-0"]);
        let worker = &t.nodes()[1];
        assert_eq!(worker.cluster().as_str(), "app1");
        assert_eq!(Some(worker.address()), r.node_ip("app1-worker-0"));
        let alone = Targets::resolve(&r, &["app2-worker-0".into()]).unwrap();
        assert!(alone.clusters().is_empty());
    }

    #[test]
    fn velero_steps_are_planned_on_every_cluster_only_when_the_topology_asks_for_backups() {
        let velero_on = |r: &Resolved| -> Vec<String> {
            let all: Vec<String> = r.topology().nodes.iter().map(|n| n.name.clone()).collect();
            let t = Targets::resolve(r, &all).unwrap();
            t.clusters()
                .iter()
                .filter(|c| c.addons().iter().any(|a| a.addon().name == "velero"))
                .map(|c| c.name().as_str().to_owned())
                .collect()
        };
        assert!(velero_on(&resolved()).is_empty());
        let mut topology = topology::default_topology();
        topology.backups = Some(topology::Backups { managed: true });
        let with = topology.resolve(None).unwrap();
        assert_eq!(velero_on(&with), ["mgmt", "app1", "app2"]);
    }

    #[test]
    fn the_host_runs_the_mirrors_only_when_the_topology_manages_them() {
        let t = Targets::resolve(&resolved(), &["app1-cp".into()]).unwrap();
        assert_eq!(t.host(), &HostRef::default());
        let mut topology = topology::default_topology();
        topology.mirrors = Some(topology::Mirrors {
            managed: true,
            ..Default::default()
        });
        let with = topology.resolve(None).unwrap();
        let t = Targets::resolve(&with, &["app1-cp".into()]).unwrap();
        assert!(t.host().mirrors() && !t.host().object_store());
    }

    #[test]
    fn a_node_outside_the_topology_fails_the_plan() {
        let err = Targets::resolve(&resolved(), &["ghost".into()]).unwrap_err();
        assert_eq!(err, TargetError::UnknownNode("ghost".into()));
    }
}
