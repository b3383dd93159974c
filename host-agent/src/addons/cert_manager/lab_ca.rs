//! Phase 1's objects on one cluster: the Secret holding the cluster's own
//! intermediate of the lab root (with the chain and the root as `ca.crt`)
//! and the CA `ClusterIssuer` that signs with it. The lab root's key never
//! enters a cluster; each cluster's intermediate is minted afresh when its
//! step runs, so one cluster cannot issue in another's name.

use super::NAMESPACE;
use crate::addons::argocd::clusters::PLACEHOLDER;
use crate::addons::catalogue::Manifest;
use crate::addons::error::AddonError;
use crate::addons::render::{Credentials, RenderContext, manifest};
use serde_json::{Value, json};

/// The phase-1 ClusterIssuer on every cluster.
pub const LAB_ISSUER: &str = "lab-ca";
/// Its Secret in cert-manager's namespace.
pub const LAB_SECRET: &str = "lab-ca";

pub(super) fn objects(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    Ok(vec![manifest(
        "10-lab-ca.yaml",
        "Phase 1 of the PKI (C5): this cluster's CA, an intermediate of hostctl's lab\n\
         root (pathlen 0, minted per cluster by `hostctl up`; the root key stays on the\n\
         host), and the CA ClusterIssuer that signs with it.",
        &[secret(ctx)?, issuer()],
    )?])
}

fn secret(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let (crt, key, ca) = match ctx.credentials {
        Credentials::Placeholder => (
            PLACEHOLDER.to_owned(),
            PLACEHOLDER.to_owned(),
            PLACEHOLDER.to_owned(),
        ),
        Credentials::Mint(pki) => {
            let err = |source| AddonError::Credentials {
                addon: "lab-ca".into(),
                cluster: ctx.cluster.to_owned(),
                source: Box::new(source),
            };
            let lab = pki.lab_root().ok_or_else(|| AddonError::Topology {
                addon: "lab-ca".into(),
                reason: format!(
                    "no lab root in {}/lab: run `hostctl up`, which creates it",
                    pki.root().display()
                ),
            })?;
            let int = lab
                .issue_intermediate(&format!("hostctl {} cert-manager CA", ctx.cluster))
                .map_err(err)?;
            let root = lab.cert_pem().to_owned();
            (
                format!("{}{root}", int.cert_pem),
                int.key_pem.expose().to_owned(),
                root,
            )
        }
    };
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": LAB_SECRET, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": crt, "tls.key": key, "ca.crt": ca},
    }))
}

fn issuer() -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": LAB_ISSUER, "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "spec": {"ca": {"secretName": LAB_SECRET}},
    })
}
