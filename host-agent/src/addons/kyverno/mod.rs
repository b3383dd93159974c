//! Kyverno on app clusters only (C4; platform-addons §0.8–0.9, §2.9): the
//! engine from its pinned chart, sized for a 4 GiB worker (one replica of
//! each controller), then the spec's four policies as `ValidatingPolicy`
//! (`policies.kyverno.io/v1`, stable since Kyverno 1.17; the pinned chart
//! 3.9.0 ships Kyverno 1.19, which serves v1). Placement is data here
//! ([`Placement::App`]), not a topology option, so no topology can put
//! Kyverno on mgmt. docs/policy.md explains the policies and exclusions.

pub mod live;
pub mod policies;

use super::budget::{Resources, Workload, resources_of};
use super::catalogue::{Addon, Chart, ChartRepo, Placement, Readiness};
use super::error::AddonError;
use super::render::{RenderContext, no_objects};
use serde_json::{Value, json};

/// Where Kyverno's controllers run.
pub const NAMESPACE: &str = "kyverno";

/// The kyverno chart (Kyverno v1.19.0).
pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://kyverno.github.io/kyverno"),
    name: "kyverno",
    version: "3.9.0",
    digest: None,
};

/// Lab sizes: one replica each; the chart's memory limits (384Mi for the
/// admission controller) kept, the reports controller given headroom
/// because it is the one that grows with reports (kubermatic#15666).
pub const WORKLOADS: &[Workload] = &[
    Workload::one(
        "kyverno-admission-controller",
        Resources::new(50, 128),
        Resources::new(0, 384),
        60,
    ),
    Workload::one(
        "kyverno-background-controller",
        Resources::new(20, 64),
        Resources::new(0, 128),
        30,
    ),
    Workload::one(
        "kyverno-cleanup-controller",
        Resources::new(20, 64),
        Resources::new(0, 128),
        30,
    ),
    Workload::one(
        "kyverno-reports-controller",
        Resources::new(20, 64),
        Resources::new(0, 256),
        30,
    ),
];

/// The engine.
pub const KYVERNO: Addon = Addon {
    name: "kyverno",
    summary: "Kyverno: admission policies on app clusters (C4), never on mgmt",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::App,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: false,
    values,
    objects: no_objects,
    readiness: &[
        Readiness::Crd("validatingpolicies.policies.kyverno.io"),
        Readiness::Deployment("kyverno-admission-controller"),
        Readiness::Deployment("kyverno-background-controller"),
        Readiness::Deployment("kyverno-cleanup-controller"),
        Readiness::Deployment("kyverno-reports-controller"),
    ],
    workloads: WORKLOADS,
    hook: None,
};

/// The chart's values: keys as in kyverno 3.9.0's `values.yaml`. The
/// webhooks skip the same system namespaces the policies exclude, so a
/// broken Kyverno cannot block the platform's own pods.
fn values(_: &RenderContext<'_>) -> Result<Value, AddonError> {
    let excluded = policies::excluded_namespaces();
    Ok(json!({
        "admissionController": {
            "replicas": 1,
            "container": {"resources": resources_of(WORKLOADS, "kyverno-admission-controller")},
        },
        "backgroundController": {
            "replicas": 1,
            "resources": resources_of(WORKLOADS, "kyverno-background-controller"),
        },
        "cleanupController": {
            "replicas": 1,
            "resources": resources_of(WORKLOADS, "kyverno-cleanup-controller"),
        },
        "reportsController": {
            "replicas": 1,
            "resources": resources_of(WORKLOADS, "kyverno-reports-controller"),
        },
        "config": {
            "webhooks": {"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": excluded,
            }]}},
        },
    }))
}
