//! The per-cluster part of `up`'s graph as data (no jobs yet), so its
//! edges can be tested without a provider or a daemon. After each node's
//! `prerequisites/<node>`:
//!
//! ```text
//! kubeadm-init/<c>  ← prerequisites/<control plane>
//! kubeconfig/<c>    ← kubeadm-init/<c>
//! cni/<c>           ← kubeadm-init/<c>
//! kubeadm-join/<w>  ← prerequisites/<w>, kubeadm-init/<c>   (each worker)
//! nodes-ready/<c>   ← cni/<c>, every kubeadm-join/<w> of c
//! addons/<c>        ← nodes-ready/<c>
//! ```
//!
//! A cluster gets these steps only when its control plane is among the
//! nodes of the run (`--only` selects whole clusters).

use crate::orchestrator::graph::StepId;
use topology::{NodeRole, Topology};

/// What a planned step will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterJob {
    Init { cluster: String },
    Kubeconfig { cluster: String },
    Cni { cluster: String },
    Join { node: String, cluster: String },
    Ready { cluster: String, nodes: Vec<String> },
    Addons { cluster: String },
}

/// One step of the cluster part: name, dependencies, job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub id: StepId,
    pub after: Vec<StepId>,
    pub job: ClusterJob,
}

/// See the module documentation; `nodes` are the run's nodes.
pub fn cluster_steps(topology: &Topology, nodes: &[String]) -> Vec<Planned> {
    let selected = |name: &str| nodes.iter().any(|n| n == name);
    let mut out = Vec::new();
    for cluster in topology.clusters() {
        let c = cluster.name.as_str();
        let members: Vec<_> = topology.nodes_of(c).filter(|n| selected(&n.name)).collect();
        let Some(cp) = members.iter().find(|n| n.role == NodeRole::ControlPlane) else {
            continue;
        };
        let init = StepId::new("kubeadm-init", c);
        let cni = StepId::new("cni", c);
        let ready = StepId::new("nodes-ready", c);
        let mut step = |id: StepId, after: Vec<StepId>, job| out.push(Planned { id, after, job });
        step(
            init.clone(),
            vec![StepId::new("prerequisites", &cp.name)],
            ClusterJob::Init {
                cluster: c.to_owned(),
            },
        );
        step(
            StepId::new("kubeconfig", c),
            vec![init.clone()],
            ClusterJob::Kubeconfig {
                cluster: c.to_owned(),
            },
        );
        step(
            cni.clone(),
            vec![init.clone()],
            ClusterJob::Cni {
                cluster: c.to_owned(),
            },
        );
        let mut ready_after = vec![cni];
        for worker in members.iter().filter(|n| n.role != NodeRole::ControlPlane) {
            let join = StepId::new("kubeadm-join", &worker.name);
            step(
                join.clone(),
                vec![StepId::new("prerequisites", &worker.name), init.clone()],
                ClusterJob::Join {
                    node: worker.name.clone(),
                    cluster: c.to_owned(),
                },
            );
            ready_after.push(join);
        }
        step(
            ready.clone(),
            ready_after,
            ClusterJob::Ready {
                cluster: c.to_owned(),
                nodes: members.iter().map(|n| n.name.clone()).collect(),
            },
        );
        step(
            StepId::new("addons", c),
            vec![ready],
            ClusterJob::Addons {
                cluster: c.to_owned(),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(steps: &[StepId]) -> Vec<&str> {
        steps.iter().map(StepId::as_str).collect()
    }

    fn find<'a>(plan: &'a [Planned], id: &str) -> &'a Planned {
        plan.iter()
            .find(|p| p.id.as_str() == id)
            .unwrap_or_else(|| panic!("{id} not planned"))
    }

    #[test]
    fn one_cluster_has_the_documented_edges() {
        let topology = topology::default_topology();
        let nodes = vec!["app1-cp".to_owned(), "app1-worker-0".to_owned()];
        let plan = cluster_steps(&topology, &nodes);
        assert_eq!(plan.len(), 6);
        assert_eq!(
            ids(&find(&plan, "kubeadm-init/app1").after),
            ["prerequisites/app1-cp"]
        );
        assert_eq!(
            ids(&find(&plan, "kubeconfig/app1").after),
            ["kubeadm-init/app1"]
        );
        assert_eq!(ids(&find(&plan, "cni/app1").after), ["kubeadm-init/app1"]);
        assert_eq!(
            ids(&find(&plan, "kubeadm-join/app1-worker-0").after),
            ["prerequisites/app1-worker-0", "kubeadm-init/app1"]
        );
        assert_eq!(
            ids(&find(&plan, "nodes-ready/app1").after),
            ["cni/app1", "kubeadm-join/app1-worker-0"]
        );
        assert_eq!(
            find(&plan, "nodes-ready/app1").job,
            ClusterJob::Ready {
                cluster: "app1".into(),
                nodes: nodes.clone()
            }
        );
        assert_eq!(ids(&find(&plan, "addons/app1").after), ["nodes-ready/app1"]);
    }

    #[test]
    fn clusters_without_their_control_plane_get_no_steps() {
        let topology = topology::default_topology();
        let all: Vec<String> = topology.nodes().iter().map(|n| n.name.clone()).collect();
        assert_eq!(cluster_steps(&topology, &all).len(), 18);
        let plan = cluster_steps(&topology, &["app2-worker-0".to_owned()]);
        assert!(plan.is_empty(), "{plan:?}");
    }
}
