//! External Secrets on every cluster (C3; platform-addons §2.3, §3.1): the
//! operator from its pinned chart, then a `ClusterSecretStore` named
//! [`STORE`] per cluster that logs in to mgmt's Vault with that cluster's
//! own identity (its `external-secrets` service account, on the cluster's
//! `jwt-<cluster>` mount), and one sample `ExternalSecret` per cluster so
//! the path is exercised. Every ExternalSecret hostctl renders refreshes
//! hourly; while Vault is down, secrets already synced stay as they are
//! and new ones wait (docs/secrets.md).

use super::budget::{Resources, Workload, resources_of};
use super::catalogue::{Addon, Chart, ChartRepo, CustomCondition, Manifest, Placement, Readiness};
use super::cert_manager::LAB_SECRET;
use super::error::AddonError;
use super::render::{RenderContext, manifest, no_objects, no_values};
use serde_json::{Value, json};

/// Where the operator runs (and the sample lives).
pub const NAMESPACE: &str = "external-secrets";
/// Every cluster's store.
pub const STORE: &str = "vault";
/// The sample ExternalSecret (and the Secret it makes).
pub const SAMPLE: &str = "hostctl-sample";
/// C3: what every rendered ExternalSecret refreshes at.
pub const REFRESH_INTERVAL: &str = "1h";

/// The external-secrets chart (ESO v2.9.0).
pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://charts.external-secrets.io"),
    name: "external-secrets",
    version: "2.9.0",
    digest: None,
};

/// Lab sizes (the chart sets none; the 4 GB app workers need budgets).
pub const WORKLOADS: &[Workload] = &[
    Workload::one(
        "external-secrets",
        Resources::new(10, 64),
        Resources::new(0, 256),
        60,
    ),
    Workload::one(
        "external-secrets-webhook",
        Resources::new(10, 32),
        Resources::new(0, 128),
        30,
    ),
    Workload::one(
        "external-secrets-cert-controller",
        Resources::new(10, 32),
        Resources::new(0, 128),
        30,
    ),
];

/// The operator.
pub const EXTERNAL_SECRETS: Addon = Addon {
    name: "external-secrets",
    summary: "External Secrets: Vault's secrets as Kubernetes Secrets, refreshed hourly",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::All,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: false,
    values,
    objects: no_objects,
    readiness: &[
        Readiness::Crd("clustersecretstores.external-secrets.io"),
        Readiness::Crd("externalsecrets.external-secrets.io"),
        Readiness::Deployment("external-secrets"),
        Readiness::Deployment("external-secrets-webhook"),
        Readiness::Deployment("external-secrets-cert-controller"),
    ],
    workloads: WORKLOADS,
    hook: None,
};

/// The cluster's store and its sample, once mgmt's Vault is bootstrapped.
pub const SECRET_STORE: Addon = Addon {
    name: "secret-store",
    summary: "the cluster's ClusterSecretStore on mgmt's Vault, and a sample ExternalSecret",
    chart: None,
    namespace: NAMESPACE,
    placement: Placement::All,
    depends_on: &["lab-ca", "external-secrets"],
    after_mgmt: &["vault"],
    needs_backup_target: false,
    values: no_values,
    objects,
    readiness: &[
        Readiness::Condition(CustomCondition {
            api_version: "external-secrets.io/v1",
            kind: "ClusterSecretStore",
            name: STORE,
            condition: "Ready",
        }),
        Readiness::Condition(CustomCondition {
            api_version: "external-secrets.io/v1",
            kind: "ExternalSecret",
            name: SAMPLE,
            condition: "Ready",
        }),
    ],
    workloads: &[],
    hook: None,
};

/// The chart's values: keys as in external-secrets 2.9.0's `values.yaml`.
fn values(_: &RenderContext<'_>) -> Result<Value, AddonError> {
    Ok(json!({
        "installCRDs": true,
        "replicaCount": 1,
        "resources": resources_of(WORKLOADS, "external-secrets"),
        "webhook": {"replicaCount": 1, "resources": resources_of(WORKLOADS, "external-secrets-webhook")},
        "certController": {
            "replicaCount": 1,
            "resources": resources_of(WORKLOADS, "external-secrets-cert-controller"),
        },
    }))
}

/// The store (Vault at its reserved address, the lab root from phase 1's
/// Secret as its CA, JWT login as the cluster's `external-secrets` service
/// account on `jwt-<cluster>`, role `eso`) and the sample.
fn objects(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    let server = crate::secrets::vault_url(ctx.resolved).map_err(|e| AddonError::Topology {
        addon: "secret-store".into(),
        reason: e.to_string(),
    })?;
    let store = json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": STORE, "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "spec": {"provider": {"vault": {
            "server": server,
            "path": "secret",
            "version": "v2",
            "caProvider": {"type": "Secret", "name": LAB_SECRET,
                           "namespace": super::cert_manager::NAMESPACE, "key": "ca.crt"},
            "auth": {"jwt": {
                "path": vault::configure::jwt::mount_of(ctx.cluster),
                "role": "eso",
                "kubernetesServiceAccountToken": {
                    "serviceAccountRef": {"name": "external-secrets", "namespace": NAMESPACE,
                                          "audiences": ["vault"]},
                },
            }},
        }}},
    });
    let sample = external_secret(
        SAMPLE,
        NAMESPACE,
        &[("greeting", &format!("{}/sample", ctx.cluster), "greeting")],
    );
    Ok(vec![manifest(
        "10-secret-store.yaml",
        "This cluster's store on mgmt's Vault (JWT login with its own service-account\n\
         token on its own mount) and a sample ExternalSecret that exercises it\n\
         (hostctl seeds secret/<cluster>/sample when it bootstraps Vault).",
        &[store, sample],
    )?])
}

/// An ExternalSecret from the cluster's store: `data` maps a key of the
/// target Secret to a KV path and property. Refreshes every
/// [`REFRESH_INTERVAL`] (C3).
pub fn external_secret(name: &str, namespace: &str, data: &[(&str, &str, &str)]) -> Value {
    let data: Vec<Value> = data
        .iter()
        .map(|(key, path, property)| {
            json!({"secretKey": key, "remoteRef": {"key": path, "property": property}})
        })
        .collect();
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "spec": {
            "refreshInterval": REFRESH_INTERVAL,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": STORE},
            "target": {"name": name, "creationPolicy": "Owner"},
            "data": data,
        },
    })
}
