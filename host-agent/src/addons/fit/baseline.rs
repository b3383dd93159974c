//! What runs on a node before any catalogue add-on: the OS with the kubelet
//! and containerd, the control plane's static pods, and the base add-ons
//! `up` installs on every cluster (Cilium with Hubble and Cluster Mesh,
//! CoreDNS, MetalLB, local-path). Requests and limits are what those
//! manifests and charts set (most set none); expected use is the idle
//! working set from platform-addons §6, whose sources are listed there
//! (numbers marked E there are estimates).

use super::placement::{Pod, Spread};
use crate::addons::budget::Resources;

/// The OS, systemd, the kubelet, containerd and the node agent on one
/// node, in MiB (§6: 500–700, E). Not a pod: the kubelet's reservations
/// keep this memory from pods.
pub const SYSTEM_EXPECTED_MIB: u32 = 600;

/// What the kernel keeps of a VM's memory before `MemTotal` (which the
/// kubelet reports as capacity), in per mille: about 3% on Ubuntu's arm64
/// cloud kernel (E).
pub const KERNEL_PER_MILLE: u64 = 30;

const NONE: Resources = Resources::new(0, 0);

const fn pod(name: &'static str, spread: Spread, requests: Resources, expected_mib: u32) -> Pod {
    Pod {
        name,
        spread,
        requests,
        limits: NONE,
        expected_mib,
    }
}

/// The replicas of a Deployment that the scheduler places.
const fn replicas(count: u8, tolerates_control_plane: bool) -> Spread {
    Spread::Replicas {
        count,
        tolerates_control_plane,
    }
}

/// The base pods of every cluster, in the order `up` creates them.
pub const PODS: &[Pod] = &[
    // kubeadm's static pods: its manifests request CPU only (etcd also
    // 100Mi of memory) and set no limits.
    pod("etcd", Spread::ControlPlane, Resources::new(100, 100), 200),
    pod(
        "kube-apiserver",
        Spread::ControlPlane,
        Resources::new(250, 0),
        650,
    ),
    pod(
        "kube-controller-manager",
        Spread::ControlPlane,
        Resources::new(200, 0),
        80,
    ),
    pod(
        "kube-scheduler",
        Spread::ControlPlane,
        Resources::new(100, 0),
        40,
    ),
    // Cilium 1.19's chart sets no resources; its agent and Envoy tolerate
    // every taint, the operator too (two replicas by default).
    pod("cilium", Spread::EveryNode, NONE, 380),
    pod("cilium-envoy", Spread::EveryNode, NONE, 40),
    pod("cilium-operator", replicas(2, true), NONE, 50),
    pod("hubble-relay", replicas(1, false), NONE, 30),
    pod("hubble-ui", replicas(1, false), NONE, 40),
    pod("clustermesh-apiserver", replicas(1, false), NONE, 80),
    // kubeadm's CoreDNS: two replicas, 100m/70Mi, limit 170Mi, tolerating
    // the control-plane taint.
    Pod {
        name: "coredns",
        spread: replicas(2, true),
        requests: Resources::new(100, 70),
        limits: Resources::new(0, 170),
        expected_mib: 30,
    },
    // MetalLB's native manifests set no resources; the speaker tolerates
    // the control-plane taint.
    pod("metallb-speaker", Spread::EveryNode, NONE, 40),
    pod("metallb-controller", replicas(1, false), NONE, 40),
    pod("local-path-provisioner", replicas(1, false), NONE, 20),
];
