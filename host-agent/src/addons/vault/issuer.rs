//! Phase 2 of the PKI (C5) on every cluster: a `ClusterIssuer` named
//! [`VAULT_ISSUER`] signing through Vault's `pki_int/sign/cert-manager`,
//! logged in as the cluster's own `cert-manager-vault` service account on
//! its `jwt-<cluster>` mount. It comes after mgmt's Vault is bootstrapped
//! (the graph's edge, `after_mgmt`). Certificates move to it by changing
//! their issuer reference from `lab-ca` to `vault` — editing an issuer in
//! place would not re-issue them; Vault's own certificate stays on
//! `lab-ca`, which does not depend on Vault.

use crate::addons::catalogue::{Addon, CustomCondition, Manifest, Placement, Readiness};
use crate::addons::cert_manager::{LAB_SECRET, NAMESPACE};
use crate::addons::error::AddonError;
use crate::addons::render::{RenderContext, manifest, no_values};
use serde_json::json;

/// The phase-2 issuer on every cluster.
pub const VAULT_ISSUER: &str = "vault";
/// The service account cert-manager requests tokens for to log in.
pub const SERVICE_ACCOUNT: &str = "cert-manager-vault";

/// The catalogue entry.
pub const ISSUER: Addon = Addon {
    name: "vault-issuer",
    summary: "phase 2 of the PKI: a ClusterIssuer signing through mgmt's Vault",
    chart: None,
    namespace: NAMESPACE,
    placement: Placement::All,
    depends_on: &["lab-ca"],
    after_mgmt: &["vault"],
    needs_backup_target: false,
    values: no_values,
    objects,
    readiness: &[Readiness::Condition(CustomCondition {
        api_version: "cert-manager.io/v1",
        kind: "ClusterIssuer",
        name: VAULT_ISSUER,
        condition: "Ready",
    })],
    workloads: &[],
    hook: None,
};

fn objects(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    let server = crate::secrets::vault_url(ctx.resolved).map_err(|e| AddonError::Topology {
        addon: "vault-issuer".into(),
        reason: e.to_string(),
    })?;
    let labels = json!({"app.kubernetes.io/managed-by": "hostctl"});
    let account = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE, "labels": labels},
    });
    // cert-manager's controller asks for this account's tokens (and no other's).
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "cert-manager-vault-tokenrequest", "namespace": NAMESPACE, "labels": labels},
        "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                   "resourceNames": [SERVICE_ACCOUNT], "verbs": ["create"]}],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "cert-manager-vault-tokenrequest", "namespace": NAMESPACE, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "cert-manager-vault-tokenrequest"},
        "subjects": [{"kind": "ServiceAccount", "name": "cert-manager", "namespace": NAMESPACE}],
    });
    let issuer = json!({
        "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
        "metadata": {"name": VAULT_ISSUER, "labels": labels},
        "spec": {"vault": {
            "server": server,
            "path": format!("{}/sign/{}", vault::configure::pki::PKI_PATH, vault::configure::pki::PKI_ROLE),
            "caBundleSecretRef": {"name": LAB_SECRET, "key": "ca.crt"},
            "auth": {"kubernetes": {
                "mountPath": format!("/v1/auth/{}", vault::configure::jwt::mount_of(ctx.cluster)),
                "role": "cert-manager",
                "serviceAccountRef": {"name": SERVICE_ACCOUNT, "audiences": ["vault"]},
            }},
        }},
    });
    Ok(vec![manifest(
        "10-vault-issuer.yaml",
        "Phase 2 of the PKI (C5): cert-manager signs through mgmt's Vault (its PKI\n\
         intermediate chains to the same lab root as phase 1, so trust bundles do\n\
         not change). Login: this cluster's cert-manager-vault token on its own\n\
         JWT mount, role cert-manager.",
        &[account, role, binding, issuer],
    )?])
}
