//! ACL policies, least privilege per client:
//! - `hostctl-admin`: what later bootstrap runs and snapshots need — the
//!   mount tables, policies, the `jwt-*` auth mounts, `pki_int/`, the KV
//!   data, its own token, raft snapshots taken (`read`) and restored
//!   (`snapshot-force`: a lost mgmt's Vault is rebuilt from one, so the
//!   token that takes them must be able to put one back), and `sys/seal` (the `vault-down` drill seals
//!   Vault and unseals it with the key hostctl already holds, so sealing
//!   adds no power the key did not give) — not `sys/*` as a whole (no
//!   rekey, no generate-root, no unseal-key changes).
//! - `cert-manager`: signing CSRs through `pki_int`'s `cert-manager` role
//!   only (cert-manager sends CSRs; its keys never leave the cluster).
//! - `eso-<cluster>`: read-only on `secret/data/<cluster>/*` and
//!   `secret/data/shared/*` (plus their metadata, which ESO's `find` lists).

use serde_json::json;

use super::ensure_fields;
use super::pki::{PKI_PATH, PKI_ROLE};
use crate::client::VaultClient;
use crate::error::VaultError;
use crate::report::Report;

/// hostctl's own policy.
pub const ADMIN_POLICY: &str = "hostctl-admin";
/// cert-manager's policy (the same on every cluster).
pub const CERT_MANAGER_POLICY: &str = "cert-manager";

/// The External Secrets policy of `cluster`.
pub fn eso_policy(cluster: &str) -> String {
    format!("eso-{cluster}")
}

fn admin_hcl() -> String {
    const RW: &str = r#"["create", "read", "update", "delete", "list"]"#;
    const RWS: &str = r#"["create", "read", "update", "delete", "list", "sudo"]"#;
    let rules = [
        ("sys/mounts", r#"["read"]"#),
        ("sys/mounts/*", RW),
        ("sys/auth", r#"["read"]"#),
        ("sys/auth/*", RWS),
        ("sys/policies/acl/*", RW),
        ("sys/storage/raft/snapshot", r#"["read"]"#),
        ("sys/storage/raft/snapshot-force", r#"["update"]"#),
        ("sys/seal", r#"["update", "sudo"]"#),
        ("auth/jwt-*", RW),
        (&format!("{PKI_PATH}/*"), RWS),
        ("secret/*", RW),
        ("auth/token/lookup-self", r#"["read"]"#),
        ("auth/token/renew-self", r#"["update"]"#),
    ];
    rules
        .iter()
        .map(|(path, caps)| format!("path \"{path}\" {{\n  capabilities = {caps}\n}}\n"))
        .collect()
}

fn cert_manager_hcl() -> String {
    format!(
        "path \"{PKI_PATH}/sign/{PKI_ROLE}\" {{\n  capabilities = [\"create\", \"update\"]\n}}\n"
    )
}

fn eso_hcl(cluster: &str) -> String {
    [cluster, "shared"]
        .iter()
        .flat_map(|scope| {
            [
                format!("path \"secret/data/{scope}/*\" {{\n  capabilities = [\"read\"]\n}}\n"),
                format!(
                    "path \"secret/metadata/{scope}/*\" {{\n  capabilities = [\"read\", \"list\"]\n}}\n"
                ),
            ]
        })
        .collect()
}

/// Writes every policy whose text differs from hostctl's.
pub async fn ensure_policies(
    client: &VaultClient,
    clusters: &[&str],
    report: &mut Report,
) -> Result<(), VaultError> {
    let mut policies = vec![
        (ADMIN_POLICY.to_owned(), admin_hcl()),
        (CERT_MANAGER_POLICY.to_owned(), cert_manager_hcl()),
    ];
    policies.extend(clusters.iter().map(|c| (eso_policy(c), eso_hcl(c))));
    for (name, hcl) in policies {
        let path = format!("/v1/sys/policies/acl/{name}");
        ensure_fields(client, &path, &json!({ "policy": hcl }), report).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eso_reads_its_cluster_and_shared_only() {
        let hcl = eso_hcl("app1");
        assert!(hcl.contains("path \"secret/data/app1/*\""));
        assert!(hcl.contains("path \"secret/data/shared/*\""));
        assert!(!hcl.contains("update") && !hcl.contains("app2"));
    }
}
