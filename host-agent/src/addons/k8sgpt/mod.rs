//! k8sgpt on mgmt (spec §4.2; platform-addons §2.13): the k8sgpt operator
//! from its pinned chart, and — only when the topology chooses an LLM
//! backend (`observability.k8sgpt`) — one `K8sGPT` object per cluster, so
//! every cluster is analysed from mgmt ([`objects`]).
//!
//! Off by default: each backend either sends (anonymised) cluster data to
//! a third party or needs a model server the user runs, so hostctl does not
//! choose one. The operator is installed either way — it is data in the
//! catalogue like every add-on (the plan, the fit report and `charts pull`
//! do not depend on the topology's choices) and idles at ~30 MiB with
//! nothing to reconcile — but without a backend there is no `K8sGPT`
//! object, no analyser, no credential and no RBAC on any cluster, and
//! `hostctl status` says `k8sgpt: off (no backend in the topology)`.
//!
//! Every analyser reads its cluster with a kubeconfig whose client
//! certificate hostctl mints from that cluster's CA
//! ([`crate::addons::remote`]) for group [`READER_GROUP`], which
//! [`K8SGPT_ACCESS`] binds to a read-only ClusterRole on every cluster —
//! mgmt included, so no analyser runs with the operator's own service
//! account rights. An API key (openai, google) comes from mgmt's Vault
//! through External Secrets, never from a rendered file.

pub mod objects;

use super::budget::{Resources, Workload, resources_of};
use super::catalogue::{Addon, Chart, ChartRepo, Placement, Readiness};
use super::error::AddonError;
use super::render::{RenderContext, no_values};
use serde_json::{Value, json};

/// Where the operator and the `K8sGPT` objects live.
pub const NAMESPACE: &str = "k8sgpt-operator-system";
/// The user in the analysers' client certificates.
pub const READER_USER: &str = "hostctl:k8sgpt-reader";
/// The group in the analysers' client certificates, bound read-only on
/// every cluster.
pub const READER_GROUP: &str = "hostctl:k8sgpt";
/// The KV path (under mgmt's `secret/` mount, readable by mgmt's External
/// Secrets) holding the backend's API key.
pub const KEY_PATH: &str = "mgmt/k8sgpt";
/// The property of [`KEY_PATH`] holding the key.
pub const KEY_PROPERTY: &str = "api-key";
/// The k8sgpt release every analyser runs (the operator 0.2.27's pairing).
pub const K8SGPT_VERSION: &str = "v0.4.32";

/// The k8sgpt-operator chart (operator v0.2.27).
pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://charts.k8sgpt.ai/"),
    name: "k8sgpt-operator",
    version: "0.2.27",
    digest: None,
};

/// The operator's Deployment: the chart names it `<fullname>-controller-manager`,
/// and the fullname of release `k8sgpt` is `k8sgpt-k8sgpt-operator` (the
/// release name does not contain the chart's; the chart has no
/// `fullnameOverride` value).
pub const OPERATOR_DEPLOYMENT: &str = "k8sgpt-k8sgpt-operator-controller-manager";

/// The chart's defaults (`chart/operator/values.yaml`) for the operator's
/// two containers.
pub const WORKLOADS: &[Workload] = &[
    Workload::one(
        "k8sgpt-operator-manager",
        Resources::new(10, 64),
        Resources::new(500, 128),
        30,
    ),
    Workload::one(
        "k8sgpt-operator-kube-rbac-proxy",
        Resources::new(5, 64),
        Resources::new(500, 128),
        15,
    ),
];

/// The size hostctl gives each analyser (the operator defaults to a
/// 256 MiB request per analyser, three of which mgmt's worker cannot
/// spare). Not in [`WORKLOADS`]: how many run depends on the topology
/// ([`analyser_workloads`]).
pub const ANALYSER: Workload = Workload::one(
    "k8sgpt-analyser",
    Resources::new(20, 96),
    Resources::new(0, 256),
    60,
);

/// The analysers the topology runs on mgmt, for the fit report: one per
/// cluster with a backend, none without.
pub fn analyser_workloads(topology: &topology::Topology) -> Vec<Workload> {
    match topology.k8sgpt() {
        Some(_) => topology.clusters().iter().map(|_| ANALYSER).collect(),
        None => Vec::new(),
    }
}

/// The operator, and the analysers when a backend is chosen.
pub const K8SGPT: Addon = Addon {
    name: "k8sgpt",
    summary: "k8sgpt: every cluster analysed from mgmt by the topology's LLM backend (off without one)",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    // The API key's ExternalSecret needs the operator and mgmt's store.
    depends_on: &["external-secrets", "secret-store"],
    after_mgmt: &[],
    needs_backup_target: false,
    values,
    objects: objects::analysers,
    readiness: &[
        Readiness::Crd("k8sgpts.core.k8sgpt.ai"),
        Readiness::Crd("results.core.k8sgpt.ai"),
        Readiness::Deployment(OPERATOR_DEPLOYMENT),
    ],
    workloads: WORKLOADS,
    hook: None,
};

/// Every cluster's side: the read-only ClusterRole and its binding to
/// [`READER_GROUP`], when a backend is chosen.
pub const K8SGPT_ACCESS: Addon = Addon {
    name: "k8sgpt-access",
    summary: "the read-only binding k8sgpt's analyser on mgmt reads this cluster with",
    chart: None,
    namespace: "kube-system",
    placement: Placement::All,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: false,
    values: no_values,
    objects: objects::access,
    readiness: &[],
    workloads: &[],
    hook: None,
};

/// The chart's values: keys as in k8sgpt-operator 0.2.27's `values.yaml`.
/// No ServiceMonitor or Grafana dashboard: those need the monitoring
/// stack's CRDs and labels, which the observability add-ons own.
fn values(_: &RenderContext<'_>) -> Result<Value, AddonError> {
    Ok(json!({
        "interplex": {"enabled": false},
        "serviceMonitor": {"enabled": false},
        "grafanaDashboard": {"enabled": false},
        "controllerManager": {
            "replicas": 1,
            "manager": {"resources": resources_of(WORKLOADS, "k8sgpt-operator-manager")},
            "kubeRbacProxy": {"resources": resources_of(WORKLOADS, "k8sgpt-operator-kube-rbac-proxy")},
        },
    }))
}

/// Whether `resolved`'s topology turns k8sgpt on (chooses a backend).
pub fn is_on(resolved: &topology::Resolved) -> bool {
    resolved.topology().k8sgpt().is_some()
}
