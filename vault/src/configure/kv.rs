//! KV version 2 at `secret/`, where External Secrets reads
//! `secret/data/<cluster>/…` and `secret/data/shared/…`.

use serde_json::json;

use super::{Table, ensure_mount};
use crate::client::VaultClient;
use crate::error::VaultError;
use crate::report::Report;

/// The KV mount's path.
pub const KV_PATH: &str = "secret";

/// Mounts KV v2 at `secret/`; a KV v1 mount there is a conflict (upgrading
/// rewrites the data layout, so it is the operator's call).
pub async fn ensure_kv(client: &VaultClient, report: &mut Report) -> Result<(), VaultError> {
    let body = json!({"type": "kv", "options": {"version": "2"}, "description": "hostctl: secrets for External Secrets"});
    let existing = ensure_mount(client, Table::Secrets, KV_PATH, &body, report).await?;
    if let Some(mount) = existing
        && mount["options"]["version"] != "2"
    {
        return Err(VaultError::Conflict {
            what: format!("{KV_PATH}/ is a KV version 1 mount"),
            fix: format!(
                "upgrade it (POST /v1/sys/mounts/{KV_PATH}/tune {{\"options\":{{\"version\":\"2\"}}}}) or move it"
            ),
        });
    }
    Ok(())
}
