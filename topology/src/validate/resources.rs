//! VM sizes: kubeadm's minimums per node and the host's memory overall.

use super::node_path;
use crate::diagnostic::{Diagnostic, Severity};
use crate::model::{NodeRole, Topology};
use crate::report::Report;
use crate::units::{ByteSize, approx};

/// kubeadm preflight `NumCPU`: a control plane needs 2 CPUs.
const CONTROL_PLANE_CPUS: u32 = 2;
/// kubeadm preflight `Mem`: a control plane needs 1700 MiB.
const CONTROL_PLANE_MEMORY: ByteSize = ByteSize::mib(1700);
/// This tool's floor for a worker (kubeadm does not check workers): below 1 GiB
/// the kubelet, containerd and Cilium leave nothing for pods.
const WORKER_MEMORY: ByteSize = ByteSize::gib(1);
/// This tool's floor for any node: the Ubuntu image, containerd's images for
/// Kubernetes and Cilium, and logs need about this much.
const DISK: ByteSize = ByteSize::gib(10);
/// Memory the host keeps for itself (macOS, Docker services are on top).
pub const HOST_RESERVE: ByteSize = ByteSize::gib(4);

pub(super) fn check(t: &Topology, report: &mut Report<'_>) {
    for (i, n) in t.nodes.iter().enumerate() {
        let (cpus, memory, why) = match n.role {
            NodeRole::ControlPlane => (
                CONTROL_PLANE_CPUS,
                CONTROL_PLANE_MEMORY,
                "kubeadm's minimum for a control-plane node",
            ),
            NodeRole::Worker => (1, WORKER_MEMORY, "this tool's minimum for a worker node"),
        };
        let name = &n.name;
        // One message shape for every floor: what the node has, the limit
        // (with its reason) and the value to set.
        let mut floor = |field: &str, below: bool, has: String, limit: String, min: String| {
            if below {
                report.error(
                    &node_path(i, field),
                    format!("node {name} has {has}, below {limit}"),
                    format!("set `{field}: {min}` or more"),
                );
            }
        };
        floor(
            "cpus",
            n.cpus < cpus,
            format!("{} vCPU(s)", n.cpus),
            format!("{why} ({cpus})"),
            cpus.to_string(),
        );
        floor(
            "memory",
            n.memory < memory,
            format!("{} of memory", n.memory),
            format!("{why} ({memory})"),
            memory.to_string(),
        );
        floor(
            "disk",
            n.disk < DISK,
            format!("a {} disk", n.disk),
            format!("this tool's minimum ({DISK}) for the image, containerd's images and logs"),
            DISK.to_string(),
        );
    }
}

/// Warns when the VMs together ask for more memory than the host can give
/// (its total less [`HOST_RESERVE`] for the OS), with the numbers, since
/// overcommitting a Multipass host makes VMs swap or get killed mid-install.
/// `host_memory_bytes` comes from the caller (the CLI reads it with sysinfo).
pub fn check_host_capacity(t: &Topology, host_memory_bytes: u64) -> Option<Diagnostic> {
    let wanted = t.total_memory();
    let available = host_memory_bytes.saturating_sub(HOST_RESERVE.bytes());
    (wanted > available).then(|| Diagnostic {
        severity: Severity::Warning,
        file: String::new(),
        line: None,
        column: None,
        path: "nodes[*].memory".to_owned(),
        message: format!(
            "the {} VMs ask for {} of memory in total, but this host has {} of which {} can go to VMs ({} is kept for the host)",
            t.nodes.len(),
            approx(wanted),
            approx(host_memory_bytes),
            approx(available),
            HOST_RESERVE,
        ),
        fix: format!(
            "lower the nodes' memory by {} in total, or remove nodes",
            approx(wanted - available)
        ),
    })
}
