//! Argo CD's view of the clusters: one cluster Secret each (spec §1.3:
//! app1 and app2 registered declaratively), labelled with the cluster's
//! role so the ApplicationSets select by role.
//!
//! An app cluster's Secret carries a client certificate hostctl mints from
//! that cluster's CA: CN [`ARGOCD_USER`], O [`ARGOCD_GROUP`] — a group the
//! app cluster binds to `cluster-admin` with [`access_binding`], never
//! `system:masters` (a certificate in that group cannot be revoked short of
//! rotating the CA; this binding can simply be deleted). mgmt is Argo CD's
//! own cluster: its Secret names the in-cluster API and carries no key.

use super::NAMESPACE;
use crate::addons::error::AddonError;
use crate::addons::render::{Credentials, RenderContext};
use crate::cluster_config::cluster::API_SERVER_PORT;
use base64::Engine as _;
use serde_json::{Value, json};
use topology::ClusterRole;

/// The label every cluster Secret carries with its cluster's role.
pub const ROLE_LABEL: &str = "hostctl.dev/role";
/// The user name in Argo CD's client certificates.
pub const ARGOCD_USER: &str = "hostctl:argocd-manager";
/// The group in Argo CD's client certificates, bound on every app cluster.
pub const ARGOCD_GROUP: &str = "hostctl:argocd";
/// The in-cluster API as Argo CD names it.
pub const IN_CLUSTER: &str = "https://kubernetes.default.svc";
/// What review renderings carry instead of minted certificate data.
pub const PLACEHOLDER: &str = "PLACEHOLDER-minted-by-hostctl-up";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Every cluster of the topology as an Argo CD cluster Secret.
pub fn cluster_secrets(ctx: &RenderContext<'_>) -> Result<Vec<Value>, AddonError> {
    let topology = ctx.resolved.topology();
    let mut out = Vec::new();
    for cluster in topology.clusters() {
        let (role, server, config) = match cluster.role {
            ClusterRole::Mgmt => (
                "mgmt",
                IN_CLUSTER.to_owned(),
                json!({"tlsClientConfig": {"insecure": false}}),
            ),
            ClusterRole::App => (
                "app",
                api_server(ctx, &cluster.name)?,
                tls_client_config(ctx, &cluster.name)?,
            ),
        };
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": format!("cluster-{}", cluster.name),
                "namespace": NAMESPACE,
                "labels": {
                    "argocd.argoproj.io/secret-type": "cluster",
                    ROLE_LABEL: role,
                    "hostctl.dev/cluster": cluster.name,
                },
            },
            "type": "Opaque",
            "stringData": {
                "name": cluster.name,
                "server": server,
                "config": config.to_string(),
            },
        }));
    }
    Ok(out)
}

/// The cluster's API server URL as Argo CD (on mgmt) reaches it: its
/// control plane's node address, a SAN of the API server's certificate.
fn api_server(ctx: &RenderContext<'_>, cluster: &str) -> Result<String, AddonError> {
    let topology = ctx.resolved.topology();
    let ip = topology
        .control_plane(cluster)
        .and_then(|cp| ctx.resolved.node_ip(&cp.name))
        .ok_or_else(|| AddonError::Topology {
            addon: "argocd".into(),
            reason: format!("cluster {cluster} has no control-plane address"),
        })?;
    Ok(format!("https://{ip}:{API_SERVER_PORT}"))
}

/// `tlsClientConfig` with the cluster's CA and a freshly minted client
/// certificate, or placeholders for review.
fn tls_client_config(ctx: &RenderContext<'_>, cluster: &str) -> Result<Value, AddonError> {
    let Credentials::Mint(pki) = ctx.credentials else {
        return Ok(json!({"tlsClientConfig": {
            "caData": PLACEHOLDER, "certData": PLACEHOLDER, "keyData": PLACEHOLDER}}));
    };
    let err = |source| AddonError::Credentials {
        addon: "argocd".into(),
        cluster: cluster.to_owned(),
        source: Box::new(source),
    };
    let cp = pki.cluster(cluster).map_err(err)?;
    let identity = cp
        .mint_client_certificate(ARGOCD_USER, &[ARGOCD_GROUP.to_owned()])
        .map_err(err)?;
    Ok(json!({"tlsClientConfig": {
        "caData": B64.encode(cp.ca_cert_pem()),
        "certData": B64.encode(&identity.cert_pem),
        "keyData": B64.encode(identity.key_pem.expose()),
    }}))
}

/// The app cluster's binding of [`ARGOCD_GROUP`] to `cluster-admin`:
/// Argo CD installs CRDs, RBAC and namespaces there, which no narrower
/// built-in role allows.
pub fn access_binding() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "hostctl-argocd-manager",
                     "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": ARGOCD_GROUP}],
    })
}
