//! Argo CD's view of the clusters: one cluster Secret each (spec §1.3:
//! app1 and app2 registered declaratively), labelled with the cluster's
//! role so the ApplicationSets select by role.
//!
//! An app cluster's Secret carries a client certificate hostctl mints from
//! that cluster's CA ([`crate::addons::remote`]): CN [`ARGOCD_USER`], O
//! [`ARGOCD_GROUP`] — a group the app cluster binds to `cluster-admin` with
//! [`access_binding`]. mgmt is Argo CD's own cluster: its Secret names the
//! in-cluster API and carries no key.

use super::NAMESPACE;
use crate::addons::error::AddonError;
use crate::addons::remote::{ClientIdentity, RemoteAccess, group_binding};
use crate::addons::render::RenderContext;
use serde_json::{Value, json};
use topology::ClusterRole;

pub use crate::addons::remote::PLACEHOLDER;

/// The label every cluster Secret carries with its cluster's role.
pub const ROLE_LABEL: &str = "hostctl.dev/role";
/// The user name in Argo CD's client certificates.
pub const ARGOCD_USER: &str = "hostctl:argocd-manager";
/// The group in Argo CD's client certificates, bound on every app cluster.
pub const ARGOCD_GROUP: &str = "hostctl:argocd";
/// The in-cluster API as Argo CD names it.
pub const IN_CLUSTER: &str = "https://kubernetes.default.svc";

const IDENTITY: ClientIdentity = ClientIdentity {
    addon: "argocd",
    user: ARGOCD_USER,
    group: ARGOCD_GROUP,
};

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
            ClusterRole::App => {
                let access = RemoteAccess::of(ctx, &cluster.name, IDENTITY)?;
                ("app", access.server.clone(), tls_client_config(&access))
            }
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

/// `tlsClientConfig` with the cluster's CA and client certificate (or
/// placeholders for review).
fn tls_client_config(access: &RemoteAccess) -> Value {
    json!({"tlsClientConfig": {
        "caData": access.ca_data, "certData": access.cert_data, "keyData": access.key_data}})
}

/// The app cluster's binding of [`ARGOCD_GROUP`] to `cluster-admin`:
/// Argo CD installs CRDs, RBAC and namespaces there, which no narrower
/// built-in role allows.
pub fn access_binding() -> Value {
    group_binding("hostctl-argocd-manager", "cluster-admin", ARGOCD_GROUP)
}
