//! One JWT auth mount per cluster, `jwt-<cluster>`, validating service-
//! account tokens against that cluster's own `sa.pub` (which hostctl
//! generated), and the roles `eso` and `cert-manager` bound to one service
//! account each. Vault never calls the cluster back (no TokenReview), so a
//! remote app cluster needs no route from mgmt and no reviewer token; the
//! cost, no revocation check, is bounded by the short token TTLs below
//! (docs/secrets.md, "Why JWT auth").

use serde_json::{Value, json};

use super::policy::{CERT_MANAGER_POLICY, eso_policy};
use super::{Table, ensure_fields, ensure_mount};
use crate::client::VaultClient;
use crate::error::VaultError;
use crate::report::Report;

/// The audience every hostctl-configured workload requests for its token
/// (ESO's `audiences: [vault]`, cert-manager's `serviceAccountRef.audiences`).
pub const AUDIENCE: &str = "vault";
/// Vault tokens from these logins live 15 minutes, at most an hour.
pub const TOKEN_TTL_SECS: u64 = 900;
/// See [`TOKEN_TTL_SECS`].
pub const TOKEN_MAX_TTL_SECS: u64 = 3600;

/// What Vault needs to trust one cluster's service-account tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAuth {
    /// The cluster's name (`[a-z0-9-]`), in the mount's and policy's names.
    pub name: String,
    /// The cluster's service-account public key (`sa.pub`, PEM).
    pub sa_public_key_pem: String,
    /// The cluster's `--service-account-issuer`, the tokens' `iss`.
    pub issuer: String,
}

/// One role on every cluster's mount: a name, the service account it
/// admits, the policies it grants.
struct Role {
    name: &'static str,
    namespace: &'static str,
    service_account: &'static str,
    policies: Vec<String>,
}

fn roles(cluster: &str) -> [Role; 2] {
    [
        Role {
            name: "eso",
            namespace: "external-secrets",
            service_account: "external-secrets",
            policies: vec![eso_policy(cluster)],
        },
        Role {
            name: "cert-manager",
            namespace: "cert-manager",
            service_account: "cert-manager-vault",
            policies: vec![CERT_MANAGER_POLICY.to_owned()],
        },
    ]
}

/// The mount path of `cluster`'s JWT auth.
pub fn mount_of(cluster: &str) -> String {
    format!("jwt-{cluster}")
}

/// Refuses a cluster name that would not make a clean mount path.
pub fn check_name(index: usize, name: &str) -> Result<(), VaultError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(VaultError::Invalid {
            field: format!("clusters[{index}].name"),
            reason: format!("{name:?} must be lowercase letters, digits and '-'"),
        })
    }
}

fn role_body(role: &Role) -> Value {
    json!({
        "role_type": "jwt",
        "bound_audiences": [AUDIENCE],
        "user_claim": "sub",
        "bound_subject": format!("system:serviceaccount:{}:{}", role.namespace, role.service_account),
        "token_policies": role.policies,
        "token_ttl": TOKEN_TTL_SECS,
        "token_max_ttl": TOKEN_MAX_TTL_SECS,
    })
}

/// The mount, its key and issuer, and both roles, for each cluster.
pub async fn ensure_jwt(
    client: &VaultClient,
    clusters: &[ClusterAuth],
    report: &mut Report,
) -> Result<(), VaultError> {
    for cluster in clusters {
        let mount = mount_of(&cluster.name);
        let body = json!({"type": "jwt", "description": format!("hostctl: service accounts of {}", cluster.name)});
        ensure_mount(client, Table::Auth, &mount, &body, report).await?;
        let config = json!({
            "jwt_validation_pubkeys": [cluster.sa_public_key_pem.trim()],
            "jwt_supported_algs": ["ES256"],
            "bound_issuer": cluster.issuer,
        });
        ensure_fields(client, &format!("/v1/auth/{mount}/config"), &config, report).await?;
        for role in roles(&cluster.name) {
            let path = format!("/v1/auth/{mount}/role/{}", role.name);
            ensure_fields(client, &path, &role_body(&role), report).await?;
        }
    }
    Ok(())
}
