//! The configuration steps after unseal, each "read, compare, write only
//! what differs": KV v2 ([`kv`]), ACL policies ([`policy`]), a JWT auth
//! mount per cluster ([`jwt`]), the PKI intermediate and cert-manager's
//! role ([`pki`]), hostctl's admin token ([`token`]). The two helpers here
//! are the comparison every step shares.

pub mod jwt;
pub mod kv;
pub mod pki;
pub mod policy;
pub mod token;

use serde_json::Value;

use crate::client::VaultClient;
use crate::error::VaultError;
use crate::report::{Change, Report};

/// Which table a mount lives in.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    /// Secrets engines: `sys/mounts`.
    Secrets,
    /// Auth methods: `sys/auth`.
    Auth,
}

impl Table {
    fn api(self) -> &'static str {
        match self {
            Table::Secrets => "/v1/sys/mounts",
            Table::Auth => "/v1/sys/auth",
        }
    }
}

/// Mounts `body` (whose `type` is the engine) at `path` unless a mount of
/// that type is there; a mount of another type is a conflict, not
/// something hostctl replaces (it would drop the data under it). Returns
/// the existing mount's description for further checks.
pub async fn ensure_mount(
    client: &VaultClient,
    table: Table,
    path: &str,
    body: &Value,
    report: &mut Report,
) -> Result<Option<Value>, VaultError> {
    let want = body["type"].as_str().unwrap_or_default();
    let listing = client.read(table.api()).await?.unwrap_or(Value::Null);
    let key = format!("{path}/");
    let existing = listing["data"].get(&key).or_else(|| listing.get(&key));
    match existing {
        Some(m) if m["type"] == want => Ok(Some(m.clone())),
        Some(m) => Err(VaultError::Conflict {
            what: format!("{path}/ is mounted as {} in {}", m["type"], table.api()),
            fix: format!("hostctl expects a {want} mount there; move or disable the other mount"),
        }),
        None => {
            client
                .write(&format!("{}/{path}", table.api()), body)
                .await?;
            report.push(match table {
                Table::Secrets => Change::Mount(path.to_owned()),
                Table::Auth => Change::AuthMount(path.to_owned()),
            });
            Ok(None)
        }
    }
}

/// Writes `desired` to `path` unless reading `path` already shows every
/// field of `desired` with the same value. `desired` uses the forms Vault
/// reads back (durations in seconds, lists as arrays), so a configured path
/// compares equal.
pub async fn ensure_fields(
    client: &VaultClient,
    path: &str,
    desired: &Value,
    report: &mut Report,
) -> Result<(), VaultError> {
    let current = client.read(path).await?;
    let data = current.as_ref().map(|c| &c["data"]);
    if data.is_some_and(|d| subset(desired, d)) {
        return Ok(());
    }
    client.write(path, desired).await?;
    report.push(Change::Config(path.to_owned()));
    Ok(())
}

/// Whether every field of `want` has the same value in `have`; strings
/// compare without surrounding whitespace (Vault trims PEM blocks).
pub fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| subset(v, hv))),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| subset(a, b))
        }
        (Value::String(w), Value::String(h)) => w.trim() == h.trim(),
        _ => want == have,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_extra_fields_and_pem_whitespace() {
        let have = json!({"a": 1, "b": ["x\n"], "c": {"d": true, "e": 2}});
        assert!(subset(
            &json!({"a": 1, "b": ["x"], "c": {"d": true}}),
            &have
        ));
        assert!(!subset(&json!({"a": 2}), &have));
        assert!(!subset(&json!({"b": ["x", "y"]}), &have));
        assert!(!subset(&json!({"z": null}), &have));
    }
}
