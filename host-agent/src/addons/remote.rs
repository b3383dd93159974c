//! How a component on mgmt reaches an app cluster's API with its own
//! client identity (Argo CD managing it, k8sgpt reading it): the cluster's
//! API URL at its control plane's node address, its CA, and a client
//! certificate minted from that CA for the component's user and group —
//! a group the app cluster binds to exactly the rights the component needs,
//! never `system:masters` (a certificate in that group cannot be revoked
//! short of rotating the CA; a binding can simply be deleted).
//!
//! Minted only for install ([`Credentials::Mint`]); a review rendering
//! carries [`PLACEHOLDER`] instead, so golden files are stable and no
//! private key lands next to reviewable files.

use super::error::AddonError;
use super::render::{Credentials, RenderContext};
use crate::cluster_config::cluster::API_SERVER_PORT;
use base64::Engine as _;

/// What review renderings carry instead of minted certificate data.
pub const PLACEHOLDER: &str = "PLACEHOLDER-minted-by-hostctl-up";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A component's client identity on one cluster: the API URL and the
/// CA, certificate and key as base64 PEM (or [`PLACEHOLDER`]s).
#[derive(Debug, Clone)]
pub struct RemoteAccess {
    /// `https://<control-plane address>:6443`.
    pub server: String,
    /// The cluster CA (base64 PEM).
    pub ca_data: String,
    /// The client certificate (base64 PEM).
    pub cert_data: String,
    /// The private key (base64 PEM): only ever inside a Secret.
    pub key_data: String,
}

/// Whom a certificate names: CN is the user, O the group.
#[derive(Debug, Clone, Copy)]
pub struct ClientIdentity {
    /// The add-on asking, for errors.
    pub addon: &'static str,
    /// The certificate's CN: the user the API server sees.
    pub user: &'static str,
    /// The certificate's O: the group the cluster binds.
    pub group: &'static str,
}

impl RemoteAccess {
    /// The access of `who` to `cluster`, minted from `cluster`'s CA when
    /// `ctx` installs, placeholders when it renders for review.
    pub fn of(
        ctx: &RenderContext<'_>,
        cluster: &str,
        who: ClientIdentity,
    ) -> Result<RemoteAccess, AddonError> {
        let server = api_server(ctx, cluster, who.addon)?;
        let Credentials::Mint(pki) = ctx.credentials else {
            return Ok(RemoteAccess {
                server,
                ca_data: PLACEHOLDER.into(),
                cert_data: PLACEHOLDER.into(),
                key_data: PLACEHOLDER.into(),
            });
        };
        let err = |source| AddonError::Credentials {
            addon: who.addon.into(),
            cluster: cluster.to_owned(),
            source: Box::new(source),
        };
        let cp = pki.cluster(cluster).map_err(err)?;
        let identity = cp
            .mint_client_certificate(who.user, &[who.group.to_owned()])
            .map_err(err)?;
        Ok(RemoteAccess {
            server,
            ca_data: B64.encode(cp.ca_cert_pem()),
            cert_data: B64.encode(&identity.cert_pem),
            key_data: B64.encode(identity.key_pem.expose()),
        })
    }

    /// A kubeconfig for this access (cluster and context named `cluster`,
    /// the user `who.user`), for components that read one (k8sgpt).
    pub fn kubeconfig(&self, cluster: &str, who: ClientIdentity) -> Result<String, AddonError> {
        certs::EmbeddedKubeconfig {
            cluster_name: cluster,
            server_url: &self.server,
            user_name: who.user,
            context_name: cluster,
            ca_data: &self.ca_data,
            cert_data: &self.cert_data,
            key_data: &self.key_data,
        }
        .to_yaml()
        .map_err(|e| AddonError::Credentials {
            addon: who.addon.into(),
            cluster: cluster.to_owned(),
            source: Box::new(e),
        })
    }
}

/// The cluster's API server URL as a component on mgmt reaches it: its
/// control plane's node address, a SAN of the API server's certificate.
pub fn api_server(
    ctx: &RenderContext<'_>,
    cluster: &str,
    addon: &str,
) -> Result<String, AddonError> {
    let topology = ctx.resolved.topology();
    let ip = topology
        .control_plane(cluster)
        .and_then(|cp| ctx.resolved.node_ip(&cp.name))
        .ok_or_else(|| AddonError::Topology {
            addon: addon.into(),
            reason: format!("cluster {cluster} has no control-plane address"),
        })?;
    Ok(format!("https://{ip}:{API_SERVER_PORT}"))
}

/// A ClusterRoleBinding of `group` to the ClusterRole `role`, as an app
/// cluster grants a component on mgmt its rights.
pub fn group_binding(name: &str, role: &str, group: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
    })
}
