//! cert-manager on every cluster and phase 1 of the platform PKI (C5,
//! platform-addons §2.4). Phase 1 is a CA `ClusterIssuer` named
//! [`LAB_ISSUER`] on each cluster, whose CA is an intermediate of the lab
//! root hostctl keeps (`certs::LabRoot`), minted per cluster: Vault's own
//! serving certificate comes from it (Vault cannot issue the certificate
//! it needs to start), and so does everything before Vault runs. Phase 2,
//! a Vault `ClusterIssuer`, chains to the same root, so the trust bundle
//! clients hold — the lab root — never changes at the switch.

mod lab_ca;

pub use lab_ca::{LAB_ISSUER, LAB_SECRET};

use super::budget::{Resources, Workload, resources_of};
use super::catalogue::{Addon, Chart, ChartRepo, CustomCondition, Placement, Readiness};
use super::error::AddonError;
use super::render::{RenderContext, no_objects, no_values};
use serde_json::{Value, json};

/// Where cert-manager and the phase-1 issuer's Secret live (a
/// ClusterIssuer reads its Secret from cert-manager's own namespace).
pub const NAMESPACE: &str = "cert-manager";

/// The cert-manager chart (cert-manager v1.21.1), from its OCI registry.
pub const CHART: Chart = Chart {
    repo: ChartRepo::Oci("oci://quay.io/jetstack/charts"),
    name: "cert-manager",
    version: "v1.21.1",
    digest: None,
};

/// Lab sizes: the chart sets no resources; the reference puts the three
/// deployments at 60–120 MiB together when idle (§6, E).
pub const WORKLOADS: &[Workload] = &[
    Workload::one(
        "cert-manager",
        Resources::new(20, 64),
        Resources::new(0, 256),
        60,
    ),
    Workload::one(
        "cert-manager-webhook",
        Resources::new(10, 32),
        Resources::new(0, 128),
        25,
    ),
    Workload::one(
        "cert-manager-cainjector",
        Resources::new(10, 64),
        Resources::new(0, 256),
        50,
    ),
];

/// The catalogue entry for cert-manager.
pub const CERT_MANAGER: Addon = Addon {
    name: "cert-manager",
    summary: "cert-manager: certificates from the lab CA, then from Vault",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::All,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: false,
    values,
    objects: no_objects,
    readiness: &[
        Readiness::Crd("certificates.cert-manager.io"),
        Readiness::Crd("clusterissuers.cert-manager.io"),
        Readiness::Deployment("cert-manager"),
        Readiness::Deployment("cert-manager-webhook"),
        Readiness::Deployment("cert-manager-cainjector"),
    ],
    workloads: WORKLOADS,
    hook: None,
};

/// Phase 1 of the PKI: the cluster's lab-CA issuer.
pub const LAB_CA: Addon = Addon {
    name: "lab-ca",
    summary: "phase 1 of the PKI: a CA ClusterIssuer under hostctl's lab root",
    chart: None,
    namespace: NAMESPACE,
    placement: Placement::All,
    depends_on: &["cert-manager"],
    after_mgmt: &[],
    needs_backup_target: false,
    values: no_values,
    objects: lab_ca::objects,
    readiness: &[Readiness::Condition(CustomCondition {
        api_version: "cert-manager.io/v1",
        kind: "ClusterIssuer",
        name: LAB_ISSUER,
        condition: "Ready",
    })],
    workloads: &[],
    hook: None,
};

/// The chart's values: keys as in cert-manager v1.21.1's `values.yaml`.
/// The Gateway API shim is off by default (reference §0.19); the CRDs are
/// the chart's and outlive an uninstall (`crds.keep`), so certificates
/// survive a reinstall.
fn values(_: &RenderContext<'_>) -> Result<Value, AddonError> {
    Ok(json!({
        "crds": {"enabled": true, "keep": true},
        "replicaCount": 1,
        "resources": resources_of(WORKLOADS, "cert-manager"),
        "webhook": {"replicaCount": 1, "resources": resources_of(WORKLOADS, "cert-manager-webhook")},
        "cainjector": {"replicaCount": 1, "resources": resources_of(WORKLOADS, "cert-manager-cainjector")},
        "startupapicheck": {"enabled": true},
        "config": {
            "apiVersion": "controller.config.cert-manager.io/v1alpha1",
            "kind": "ControllerConfiguration",
            "enableGatewayAPI": true,
        },
    }))
}
