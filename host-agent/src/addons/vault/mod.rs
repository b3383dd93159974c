//! Vault on mgmt (spec §1.4, ADR-004; platform-addons §2.2): the pinned
//! chart, one server with integrated raft storage on `local-path-retain`,
//! TLS from phase 1 of the PKI (a cert-manager `Certificate` under the
//! cluster's lab-CA issuer: Vault cannot issue the certificate it needs to
//! start), and a fixed MetalLB address so hostctl and the app clusters
//! reach it. Installed without `--wait`: its pod is not Ready until
//! unsealed. After it, hostctl bootstraps it through its HTTP API
//! ([`crate::secrets`]; the entry's [`Hook::VaultBootstrap`]).

pub mod issuer;

use super::budget::{Resources, Workload, resources_of};
use super::catalogue::{
    Addon, Chart, ChartRepo, CustomCondition, Hook, Manifest, Placement, Readiness,
};
use super::cert_manager::LAB_ISSUER;
use super::error::AddonError;
use super::render::{RenderContext, manifest};
use crate::cluster_config::cluster::ClusterView;
use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// Where Vault runs.
pub const NAMESPACE: &str = "vault";
/// The API (and UI) port.
pub const PORT: u16 = 8200;
/// The Secret cert-manager writes Vault's serving certificate to.
pub const TLS_SECRET: &str = "vault-tls";

/// The vault chart (Vault 2.0.4).
pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://helm.releases.hashicorp.com"),
    name: "vault",
    version: "0.34.1",
    digest: None,
};

/// SPEC §12's sizes; ~155 MiB expected for an active raft node (§2.2).
pub const WORKLOADS: &[Workload] = &[Workload::one(
    "vault",
    Resources::new(100, 256),
    Resources::new(500, 512),
    200,
)];

/// The catalogue entry.
pub const VAULT: Addon = Addon {
    name: "vault",
    summary: "Vault: secrets and the platform's PKI, bootstrapped by hostctl through its API",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    depends_on: &["lab-ca"],
    after_mgmt: &[],
    needs_backup_target: false,
    values,
    objects,
    // The serving certificate; the pod itself is Ready only once unsealed,
    // which the bootstrap does.
    readiness: &[Readiness::Condition(CustomCondition {
        api_version: "cert-manager.io/v1",
        kind: "Certificate",
        name: TLS_SECRET,
        condition: "Ready",
    })],
    workloads: WORKLOADS,
    hook: Some(Hook::VaultBootstrap),
};

/// Vault's reserved address on the mgmt cluster of `ctx`.
pub fn address(ctx: &RenderContext<'_>) -> Result<Ipv4Addr, AddonError> {
    let view = ClusterView::new(ctx.resolved, ctx.cluster).map_err(|e| AddonError::Topology {
        addon: "vault".into(),
        reason: e.to_string(),
    })?;
    view.vault_address().ok_or_else(|| AddonError::Topology {
        addon: "vault".into(),
        reason: format!(
            "cluster {}'s MetalLB pool has no second address for Vault: widen its pool",
            ctx.cluster
        ),
    })
}

/// The chart's values: keys as in vault-helm 0.34.1's `values.yaml`. The
/// chart has no LoadBalancer type for the server Service, so the address
/// is the UI Service's (the same listener, port 8200), which publishes
/// not-ready addresses: a sealed Vault is never Ready, and hostctl must
/// reach it to unseal it.
fn values(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let ip = address(ctx)?;
    let config = format!(
        "ui = true\n\
         listener \"tcp\" {{\n  address = \"[::]:{PORT}\"\n  cluster_address = \"[::]:8201\"\n  \
         tls_cert_file = \"/vault/userconfig/{TLS_SECRET}/tls.crt\"\n  \
         tls_key_file = \"/vault/userconfig/{TLS_SECRET}/tls.key\"\n}}\n\
         storage \"raft\" {{\n  path = \"/vault/data\"\n}}\n\
         service_registration \"kubernetes\" {{}}\n"
    );
    Ok(json!({
        "global": {"tlsDisable": false},
        "injector": {"enabled": false},
        "server": {
            "resources": resources_of(WORKLOADS, "vault"),
            "dataStorage": {"enabled": true, "size": "10Gi", "storageClass": "local-path-retain"},
            "extraVolumes": [{"type": "secret", "name": TLS_SECRET}],
            "extraEnvironmentVars": {"VAULT_CACERT": format!("/vault/userconfig/{TLS_SECRET}/ca.crt")},
            "standalone": {"enabled": false},
            "ha": {
                "enabled": true,
                "replicas": 1,
                "raft": {"enabled": true, "setNodeId": true, "config": config},
            },
        },
        "ui": {
            "enabled": true,
            "serviceType": "LoadBalancer",
            "externalPort": PORT,
            "publishNotReadyAddresses": true,
            "activeVaultPodOnly": false,
            "annotations": {"metallb.io/loadBalancerIPs": ip.to_string()},
        },
    }))
}

/// Vault's serving certificate from the phase-1 issuer, for its in-cluster
/// names and its reserved address.
fn objects(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    let ip = address(ctx)?;
    let certificate = json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": TLS_SECRET, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "spec": {
            "secretName": TLS_SECRET,
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": LAB_ISSUER},
            "commonName": "vault.vault.svc",
            "dnsNames": ["vault", "vault.vault", "vault.vault.svc", "vault.vault.svc.cluster.local",
                         "vault-0.vault-internal", "vault-active.vault.svc", "vault-ui.vault.svc"],
            "ipAddresses": [ip.to_string(), "127.0.0.1"],
            "duration": "2160h",
            "renewBefore": "360h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "usages": ["server auth", "digital signature"],
        },
    });
    Ok(vec![manifest(
        "10-vault-tls.yaml",
        "Vault's serving certificate, from phase 1 of the PKI (ClusterIssuer lab-ca):\n\
         never from Vault itself, whose renewal would then depend on Vault.",
        &[certificate],
    )?])
}
