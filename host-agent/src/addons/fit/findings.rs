//! What the fit report warns about, each with the fix: a pod whose
//! requests fit no node (it would stay `Pending`), a node whose expected
//! use comes within a tenth of the kubelet's eviction threshold, and — as a note, since
//! the lab overcommits on purpose — memory limits beyond allocatable.

use super::NodeFit;
use super::baseline::KERNEL_PER_MILLE;
use super::placement::Pending;
use crate::cluster_config::kubelet::EVICTION_HARD_MEMORY_MIB;
use serde::Serialize;
use std::fmt;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `up` would leave something not running or evicted.
    Warning,
    /// Worth knowing, nothing to change.
    Note,
}

/// One thing the fit report found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// The node, or the cluster for a pod that fits nowhere.
    pub subject: String,
    pub message: String,
    /// What to change (empty for a note that needs nothing).
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        write!(f, "{label}: {}: {}", self.subject, self.message)?;
        if !self.fix.is_empty() {
            write!(f, "; fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// A pod no node of its cluster has room for.
pub fn pending(p: &Pending) -> Finding {
    Finding {
        severity: Severity::Warning,
        subject: format!("cluster {}", p.cluster),
        message: format!(
            "{} requests {}m CPU and {}Mi memory and no schedulable node has that left: it would stay Pending",
            p.pod, p.requests.cpu_millis, p.requests.memory_mib
        ),
        fix: format!(
            "give a worker of {} more `memory:`/`cpus:` in the topology, or add a worker to it",
            p.cluster
        ),
    }
}

/// The smallest whole-GiB VM whose expected use of `expected_mib` stays
/// under nine tenths of the eviction threshold (the inverse of
/// [`per_node`]'s test, kernel share included).
fn comfortable_vm_gib(expected_mib: u32) -> u64 {
    let threshold = u64::from(expected_mib) * 10 / 9 + 1;
    let capacity = threshold + u64::from(EVICTION_HARD_MEMORY_MIB);
    let vm = capacity * 1000 / (1000 - KERNEL_PER_MILLE) + 1;
    vm.div_ceil(1024)
}

/// The per-node findings, in node order.
pub fn per_node(nodes: &[NodeFit]) -> Vec<Finding> {
    let mut found = Vec::new();
    for n in nodes {
        let threshold = n
            .capacity
            .memory_mib
            .saturating_sub(EVICTION_HARD_MEMORY_MIB);
        let comfortable = threshold / 10 * 9;
        if n.expected_mib > comfortable {
            let untaint = if n.tainted {
                " (its control plane is tainted, so nothing of the platform runs there)"
            } else {
                ""
            };
            found.push(Finding {
                severity: Severity::Warning,
                subject: n.node.clone(),
                message: format!(
                    "expected use {} MiB leaves less than a tenth of headroom below the kubelet's eviction threshold ({threshold} of {} MiB){untaint}: a burst evicts pods",
                    n.expected_mib, n.capacity.memory_mib
                ),
                fix: format!(
                    "set `memory: {}GiB` on node {} in the topology, or move add-ons off {}",
                    comfortable_vm_gib(n.expected_mib),
                    n.node,
                    n.cluster
                ),
            });
        }
        if n.limits.memory_mib > n.allocatable.memory_mib {
            found.push(Finding {
                severity: Severity::Note,
                subject: n.node.clone(),
                message: format!(
                    "memory limits add up to {} MiB of {} MiB allocatable: overcommitted by design, the kubelet evicts before the kernel kills",
                    n.limits.memory_mib, n.allocatable.memory_mib
                ),
                fix: String::new(),
            });
        }
    }
    found
}
