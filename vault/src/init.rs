//! Initialisation and unsealing: the two steps that create or use the
//! unseal key. `sys/init` answers with the only copy of the key and the root
//! token, so both are on disk (0600, atomically) before anything else uses
//! them; an initialised Vault is never initialised again.

use std::time::{SystemTime, UNIX_EPOCH};

use hyper::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::{VaultClient, decode};
use crate::error::VaultError;
use crate::files::{ADMIN_TOKEN, KeyDir, ROOT_TOKEN, UNSEAL_KEY};
use crate::health::{self, VaultStatus};
use crate::report::{Change, Report};
use crate::secret::Secret;

#[derive(Deserialize)]
struct InitAnswer {
    keys_base64: Vec<Secret>,
    root_token: Secret,
}

#[derive(Deserialize)]
struct SealStatus {
    sealed: bool,
}

/// Initialises an uninitialised Vault with one key share, or checks that
/// the unseal key of an initialised one is on disk.
pub async fn ensure_initialised(
    client: &VaultClient,
    keys: &KeyDir,
    state: &VaultStatus,
    report: &mut Report,
) -> Result<(), VaultError> {
    keys.ensure()?;
    if state.initialized {
        if !keys.exists(UNSEAL_KEY)? {
            return Err(VaultError::UnsealKeyMissing {
                path: keys.file(UNSEAL_KEY),
            });
        }
        return Ok(());
    }
    // Files left by an earlier Vault whose storage is gone: kept aside (a
    // raft snapshot of that Vault needs that key), never overwritten.
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        .to_string();
    for name in [UNSEAL_KEY, ROOT_TOKEN, ADMIN_TOKEN] {
        if let Some(kept) = keys.set_aside(name, &stamp)? {
            report.push(Change::SetAside(kept.display().to_string()));
        }
    }
    let body = json!({"secret_shares": 1, "secret_threshold": 1});
    let answer = client
        .call(Method::PUT, "/v1/sys/init", Some(&body))
        .await?;
    let init: InitAnswer = decode("PUT", "/v1/sys/init", answer)?;
    let key = init
        .keys_base64
        .into_iter()
        .next()
        .ok_or_else(|| VaultError::Decode {
            method: "PUT".into(),
            path: "/v1/sys/init".into(),
            reason: "no unseal key in the answer".into(),
        })?;
    keys.write(UNSEAL_KEY, &key)?;
    keys.write(ROOT_TOKEN, &init.root_token)?;
    report.push(Change::Initialised);
    Ok(())
}

/// Unseals Vault with the key on disk if it is sealed; `Ok(true)` when it
/// had to. Usable on its own after a restart.
pub async fn unseal(client: &VaultClient, keys: &KeyDir) -> Result<bool, VaultError> {
    let state = health::status(client).await?;
    if !state.sealed {
        return Ok(false);
    }
    let key = keys
        .read(UNSEAL_KEY)?
        .ok_or_else(|| VaultError::UnsealKeyMissing {
            path: keys.file(UNSEAL_KEY),
        })?;
    let body = json!({"key": key.expose()});
    let answer = client
        .call(Method::PUT, "/v1/sys/unseal", Some(&body))
        .await?;
    let after: SealStatus = decode("PUT", "/v1/sys/unseal", answer)?;
    if after.sealed {
        return Err(VaultError::Conflict {
            what: "Vault is still sealed after the unseal key was accepted".into(),
            fix: format!(
                "the key in {} is not this Vault's (threshold above 1?): restore the right one",
                keys.file(UNSEAL_KEY).display()
            ),
        });
    }
    Ok(true)
}
