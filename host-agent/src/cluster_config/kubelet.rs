//! The cluster-wide `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1)
//! that rides along with `kubeadm init` and lands in the `kubelet-config`
//! ConfigMap every joining node reads. Node-local values (node-ip) are not
//! here but in `nodeRegistration.kubeletExtraArgs`.

use serde::Serialize;

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
        }
    }
}
