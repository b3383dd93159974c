//! The cluster-wide `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1)
//! that rides along with `kubeadm init` and lands in the `kubelet-config`
//! ConfigMap every joining node reads. Node-local values (node-ip) are not
//! here but in `nodeRegistration.kubeletExtraArgs`.

use serde::Serialize;
use std::collections::BTreeMap;

/// containerd's CRI endpoint on Ubuntu; kubeadm's `criSocket` and the
/// kubelet's runtime endpoint must name the same socket.
pub const CONTAINERD_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";

/// The kubelet settings hostctl makes explicit.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfiguration {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// systemd, matching containerd's `SystemdCgroup = true`; a mismatch
    /// makes pods restart under memory pressure.
    pub cgroup_driver: &'static str,
    pub container_runtime_endpoint: &'static str,
    /// Swap stays off on the VMs; kubelet refuses to start if it is on.
    pub fail_swap_on: bool,
    /// Ubuntu 24.04 is cgroup v2; stating 1.35's default makes a cgroup v1
    /// image fail loudly at kubelet start rather than subtly later.
    pub fail_cgroup_v1: bool,
    /// Kept from pods for the OS (systemd, journald, the node agent).
    pub system_reserved: BTreeMap<&'static str, String>,
    /// Kept from pods for the kubelet and containerd.
    pub kube_reserved: BTreeMap<&'static str, String>,
    /// All four of upstream's default signals, stated: naming one replaces
    /// the defaults of the others with nothing. With the reservations
    /// above, a node under memory pressure evicts pods instead of freezing
    /// (platform-addons §6, measure 4).
    pub eviction_hard: BTreeMap<&'static str, String>,
}

/// What [`KubeletConfiguration::system_reserved`] holds back: millicores, MiB.
pub const SYSTEM_RESERVED: (u32, u32) = (100, 256);
/// What [`KubeletConfiguration::kube_reserved`] holds back: millicores, MiB.
pub const KUBE_RESERVED: (u32, u32) = (100, 256);
/// The hard eviction threshold on available memory, in MiB.
pub const EVICTION_HARD_MEMORY_MIB: u32 = 100;

fn reserved((cpu_millis, memory_mib): (u32, u32)) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("cpu", format!("{cpu_millis}m")),
        ("memory", format!("{memory_mib}Mi")),
    ])
}

impl KubeletConfiguration {
    /// The configuration every node of every cluster gets.
    pub fn standard() -> Self {
        KubeletConfiguration {
            api_version: "kubelet.config.k8s.io/v1beta1",
            kind: "KubeletConfiguration",
            cgroup_driver: "systemd",
            container_runtime_endpoint: CONTAINERD_SOCKET,
            fail_swap_on: true,
            fail_cgroup_v1: true,
            system_reserved: reserved(SYSTEM_RESERVED),
            kube_reserved: reserved(KUBE_RESERVED),
            eviction_hard: BTreeMap::from([
                ("memory.available", format!("{EVICTION_HARD_MEMORY_MIB}Mi")),
                ("nodefs.available", "10%".to_owned()),
                ("nodefs.inodesFree", "5%".to_owned()),
                ("imagefs.available", "15%".to_owned()),
            ]),
        }
    }
}
