//! Will it fit? Per node, the requests and limits of everything the
//! scheduler would put there — the base pods ([`baseline`]) and the
//! catalogue's workloads — against what the kubelet offers (allocatable:
//! the VM less the kernel's share, the kubelet's reservations and its
//! eviction threshold), and the lab's expected memory use against the
//! node's capacity. `hostctl validate` prints it and `hostctl render`
//! writes it to `DIR/fit.txt`; its warnings say what to change.
//!
//! It is a projection, not the scheduler: placement follows the default
//! scheduler's least-allocated scoring ([`placement`]), and the expected
//! use is an idle working-set estimate (platform-addons §6). It exists to
//! catch, before any VM boots, a topology whose platform cannot run.

mod baseline;
mod findings;
mod placement;

pub use findings::{Finding, Severity};
pub use placement::{Pod, Spread};

use super::budget::{Resources, Workload};
use super::catalogue::{Addon, Available, catalogue};
use super::k8sgpt::{K8SGPT, analyser_workloads};
use crate::cluster_config::kubeadm::control_plane_tainted;
use crate::output::Table;
use serde::Serialize;
use topology::{ClusterRole, Topology};

/// One node's projected load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFit {
    pub node: String,
    pub cluster: String,
    pub control_plane: bool,
    /// Whether it keeps the control-plane `NoSchedule` taint.
    pub tainted: bool,
    /// What the kubelet reports (`MemTotal`, vCPUs × 1000).
    pub capacity: Resources,
    /// What pods may request.
    pub allocatable: Resources,
    pub requests: Resources,
    /// Of the pods that have limits.
    pub limits: Resources,
    /// Pods placed here without a memory limit.
    pub unlimited: usize,
    /// OS, kubelet and containerd plus every pod's expected working set.
    pub expected_mib: u32,
    /// The pods placed here, in placement order.
    pub pods: Vec<String>,
}

/// The projection for a whole topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FitReport {
    pub nodes: Vec<NodeFit>,
    pub findings: Vec<Finding>,
}

/// What is projected onto a topology: which add-ons, and which control
/// planes keep their taint.
#[derive(Debug, Clone, Copy)]
pub struct Scenario<'a> {
    pub addons: &'a [Addon],
    /// Whether every cluster has a backup target (so gets Velero).
    pub backups: bool,
    /// Whether a control plane of a cluster of this role is tainted.
    pub tainted: fn(ClusterRole) -> bool,
}

impl Scenario<'static> {
    /// The catalogue and the control planes as kubeadm registers them,
    /// without Velero; [`Scenario::with_backups`] adds it, and [`report`]
    /// does so for a topology with `backups: { managed: true }`.
    pub fn installed() -> Self {
        Scenario {
            addons: catalogue(),
            backups: false,
            tainted: control_plane_tainted,
        }
    }
}

impl<'a> Scenario<'a> {
    /// The same with a backup target for every cluster (Velero everywhere).
    pub fn with_backups(self) -> Self {
        Scenario {
            backups: true,
            ..self
        }
    }
}

/// The projection of `topology` with what `up` installs.
pub fn report(topology: &Topology) -> FitReport {
    let scenario = Scenario::installed();
    let scenario = if topology.managed_backups() {
        scenario.with_backups()
    } else {
        scenario
    };
    report_for(topology, scenario)
}

/// The projection of another scenario (what a component not yet in the
/// catalogue, or a tainted control plane, would do to a topology).
pub fn report_for(topology: &Topology, scenario: Scenario<'_>) -> FitReport {
    let mut nodes = Vec::new();
    let mut findings = Vec::new();
    for cluster in topology.clusters() {
        let tainted = (scenario.tainted)(cluster.role);
        let mut placer = placement::Placer::new(topology, cluster, tainted);
        let available = Available::new(topology.mgmt_cluster().is_some(), scenario.backups);
        let workloads = scenario
            .addons
            .iter()
            .filter(|a| a.applies(cluster.role, available))
            .flat_map(|a| a.workloads.iter().map(Pod::from_workload));
        let chosen = topology_workloads(topology, &scenario, cluster.role);
        let workloads = workloads.chain(chosen.iter().map(Pod::from_workload));
        for pod in baseline::PODS.iter().copied().chain(workloads) {
            findings.extend(placer.place(&pod).iter().map(findings::pending));
        }
        nodes.extend(placer.finish());
    }
    findings.extend(findings::per_node(&nodes));
    FitReport { nodes, findings }
}

/// Workloads whose count the topology decides rather than the catalogue:
/// k8sgpt's analysers on mgmt, one per cluster once a backend is chosen.
fn topology_workloads(
    topology: &Topology,
    scenario: &Scenario<'_>,
    role: ClusterRole,
) -> Vec<Workload> {
    let k8sgpt_installed = scenario.addons.iter().any(|a| a.name == K8SGPT.name);
    if role == ClusterRole::Mgmt && k8sgpt_installed {
        analyser_workloads(topology)
    } else {
        Vec::new()
    }
}

impl FitReport {
    /// The warnings (not the notes).
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// One row per node.
    pub fn table(&self) -> Table {
        let mut table = Table::new([
            "NODE",
            "CPU REQUESTS",
            "MEMORY REQUESTS",
            "MEMORY LIMITS",
            "EXPECTED USE",
            "PODS",
        ]);
        for n in &self.nodes {
            let unlimited = match n.unlimited {
                0 => String::new(),
                k => format!(" (+{k} unlimited)"),
            };
            let node = if n.tainted {
                format!("{} (tainted)", n.node)
            } else {
                n.node.clone()
            };
            table.row([
                node,
                format!(
                    "{}m of {}m",
                    n.requests.cpu_millis, n.allocatable.cpu_millis
                ),
                format!(
                    "{}Mi of {}Mi",
                    n.requests.memory_mib, n.allocatable.memory_mib
                ),
                format!("{}Mi{unlimited}", n.limits.memory_mib),
                format!("{}Mi of {}Mi", n.expected_mib, n.capacity.memory_mib),
                n.pods.len().to_string(),
            ]);
        }
        table
    }

    /// The report as `hostctl render` writes it: the table, then each
    /// finding on its own line (or that there is none).
    pub fn text(&self) -> String {
        let mut out = String::from(
            "# Will it fit? Requests and limits of everything scheduled on each node against\n\
             # allocatable, and expected idle use against capacity (docs/platform.md).\n",
        );
        out.push_str(&self.table().to_string());
        if self.findings.is_empty() {
            out.push_str("no findings: everything fits with room for the expected use\n");
        }
        for f in &self.findings {
            out.push_str(&format!("{f}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests;
