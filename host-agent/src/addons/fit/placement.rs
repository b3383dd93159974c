//! Where the scheduler would put each pod, closely enough to add up a
//! node's load: static pods on the control plane, DaemonSet pods on every
//! node, and each replica on the schedulable node with room for its
//! requests whose requested share is lowest (kube-scheduler's default
//! `LeastAllocated` score, counting a pod that requests nothing as 100m
//! and 200Mi, as the scheduler does when it scores). Replicas of one
//! workload go to different nodes while there are any (cilium-operator
//! requires that by anti-affinity, kubeadm's CoreDNS prefers it).

use super::NodeFit;
use super::baseline::{KERNEL_PER_MILLE, SYSTEM_EXPECTED_MIB};
use crate::addons::budget::{Replicas, Resources, Workload};
use crate::cluster_config::kubelet::{EVICTION_HARD_MEMORY_MIB, KUBE_RESERVED, SYSTEM_RESERVED};
use topology::{Cluster, NodeRole, Topology};

/// Where copies of a pod run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// A static pod of the control plane.
    ControlPlane,
    /// A DaemonSet pod that tolerates every taint: one on each node.
    EveryNode,
    /// A DaemonSet pod that tolerates no taint: one on each node but a
    /// tainted control plane.
    EveryUntaintedNode,
    /// A Deployment's or StatefulSet's replicas, placed by the scheduler.
    Replicas {
        count: u8,
        tolerates_control_plane: bool,
    },
}

/// One pod (or set of identical pods) to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pod {
    pub name: &'static str,
    pub spread: Spread,
    pub requests: Resources,
    /// A zero memory limit means "no limit" (counted as unlimited).
    pub limits: Resources,
    pub expected_mib: u32,
}

impl Pod {
    /// A catalogue add-on's workload; add-ons tolerate no taint.
    pub fn from_workload(w: &Workload) -> Pod {
        Pod {
            name: w.name,
            spread: match w.replicas {
                Replicas::One => Spread::Replicas {
                    count: 1,
                    tolerates_control_plane: false,
                },
                Replicas::EveryNode => Spread::EveryNode,
                Replicas::EveryUntaintedNode => Spread::EveryUntaintedNode,
            },
            requests: w.requests,
            limits: w.limits,
            expected_mib: w.expected_mib,
        }
    }

    /// The requests the scheduler scores with (its non-zero defaults).
    fn scored(&self) -> Resources {
        Resources::new(
            nonzero(self.requests.cpu_millis, 100),
            nonzero(self.requests.memory_mib, 200),
        )
    }
}

fn nonzero(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

/// A pod that found no node with room for its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub pod: &'static str,
    pub cluster: String,
    pub requests: Resources,
}

/// The nodes of one cluster as pods are added to them.
pub struct Placer {
    nodes: Vec<NodeFit>,
    /// Per node, the requests as the scheduler scores them.
    scored: Vec<Resources>,
    cluster: String,
}

impl Placer {
    /// The empty nodes of `cluster`: allocatable is the VM less the
    /// kernel's share, the kubelet's reservations and its eviction
    /// threshold (`cluster_config::kubelet`); `tainted`: whether its
    /// control plane keeps the `NoSchedule` taint.
    pub fn new(topology: &Topology, cluster: &Cluster, tainted: bool) -> Placer {
        let nodes: Vec<NodeFit> = topology
            .nodes_of(&cluster.name)
            .map(|n| {
                let vm = n.memory.as_mib();
                let kernel = vm.saturating_mul(KERNEL_PER_MILLE) / 1000;
                let capacity = Resources::new(
                    n.cpus.saturating_mul(1000),
                    u32::try_from(vm.saturating_sub(kernel)).unwrap_or(u32::MAX),
                );
                let reserved = Resources::new(SYSTEM_RESERVED.0, SYSTEM_RESERVED.1)
                    .plus(Resources::new(KUBE_RESERVED.0, KUBE_RESERVED.1))
                    .plus(Resources::new(0, EVICTION_HARD_MEMORY_MIB));
                let control_plane = n.role == NodeRole::ControlPlane;
                NodeFit {
                    node: n.name.clone(),
                    cluster: cluster.name.clone(),
                    control_plane,
                    tainted: control_plane && tainted,
                    capacity,
                    allocatable: capacity.minus(reserved),
                    requests: Resources::default(),
                    limits: Resources::default(),
                    unlimited: 0,
                    expected_mib: SYSTEM_EXPECTED_MIB,
                    pods: Vec::new(),
                }
            })
            .collect();
        Placer {
            scored: vec![Resources::default(); nodes.len()],
            nodes,
            cluster: cluster.name.clone(),
        }
    }

    /// Places every copy of `pod`; the copies that fit nowhere come back.
    pub fn place(&mut self, pod: &Pod) -> Vec<Pending> {
        let mut pending = Vec::new();
        let targets: Vec<Option<usize>> = match pod.spread {
            Spread::ControlPlane => vec![self.nodes.iter().position(|n| n.control_plane)],
            Spread::EveryNode => (0..self.nodes.len())
                .map(|i| self.has_room(i, pod).then_some(i))
                .collect(),
            Spread::EveryUntaintedNode => (0..self.nodes.len())
                .filter(|&i| !self.nodes[i].tainted)
                .map(|i| self.has_room(i, pod).then_some(i))
                .collect(),
            Spread::Replicas {
                count,
                tolerates_control_plane,
            } => (0..count)
                .map(|_| {
                    let best = self
                        .best(pod, tolerates_control_plane, true)
                        .or_else(|| self.best(pod, tolerates_control_plane, false));
                    if let Some(i) = best {
                        self.add(i, pod);
                    }
                    best
                })
                .collect(),
        };
        for target in targets {
            match (target, pod.spread) {
                (Some(_), Spread::Replicas { .. }) => {}
                (Some(i), _) => self.add(i, pod),
                (None, _) => pending.push(Pending {
                    pod: pod.name,
                    cluster: self.cluster.clone(),
                    requests: pod.requests,
                }),
            }
        }
        pending
    }

    /// The placed nodes.
    pub fn finish(self) -> Vec<NodeFit> {
        self.nodes
    }

    fn has_room(&self, i: usize, pod: &Pod) -> bool {
        let n = &self.nodes[i];
        pod.requests.fits_in(n.allocatable.minus(n.requests))
    }

    /// The schedulable node with room whose scored share is lowest after
    /// adding `pod` (`spread`: only among nodes without a copy of it yet);
    /// ties go to the first in topology order.
    fn best(&self, pod: &Pod, tolerates_control_plane: bool, spread: bool) -> Option<usize> {
        let share = |i: usize| {
            let after = self.scored[i].plus(pod.scored());
            let alloc = self.nodes[i].allocatable;
            let part = |used: u32, of: u32| f64::from(used) / f64::from(of.max(1));
            part(after.cpu_millis, alloc.cpu_millis) + part(after.memory_mib, alloc.memory_mib)
        };
        (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].tainted || tolerates_control_plane)
            .filter(|&i| !spread || !self.nodes[i].pods.iter().any(|p| p == pod.name))
            .filter(|&i| self.has_room(i, pod))
            .min_by(|&a, &b| share(a).total_cmp(&share(b)))
    }

    fn add(&mut self, i: usize, pod: &Pod) {
        let n = &mut self.nodes[i];
        n.requests = n.requests.plus(pod.requests);
        n.limits = n.limits.plus(pod.limits);
        if pod.limits.memory_mib == 0 {
            n.unlimited += 1;
        }
        n.expected_mib = n.expected_mib.saturating_add(pod.expected_mib);
        n.pods.push(pod.name.to_owned());
        self.scored[i] = self.scored[i].plus(pod.scored());
    }
}
