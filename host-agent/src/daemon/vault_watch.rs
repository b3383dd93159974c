//! The daemon unseals mgmt's Vault after a restart, without the user.
//!
//! Who watches: the host daemon, not the agent on Vault's node. The unseal
//! key never leaves the host this way (the agent would need it on the VM,
//! next to the storage it protects), and the daemon already runs whenever
//! the environment does. The cost: while the host (or its daemon) is down,
//! a Vault that restarts stays sealed. That does not break the app
//! clusters (C1): their External Secrets keep the Secrets they synced (C3)
//! and their certificates stay valid; only new secrets and issuance wait
//! until the daemon is back and unseals it, within [`INTERVAL`].
//!
//! Every [`INTERVAL`] it asks `sys/health` (no token needed); a Vault that
//! answers initialised and sealed gets the key from
//! `$HOSTCTL_HOME/pki/vault/unseal.key`. An unreachable Vault (mgmt down,
//! not installed yet) is logged at debug level and asked again later;
//! a home without the key (Vault never bootstrapped) is left alone.
//!
//! The same loop takes Vault's scheduled raft snapshot: when Vault answers
//! unsealed, the home has hostctl's admin token and an object store
//! (`storage up` ran), and the newest host copy is 23 h old
//! ([`crate::storage::vault_snapshot::SCHEDULE_EVERY`]), it takes one and
//! stores it in the `vault` bucket. A failed attempt is retried after
//! [`RETRY_AFTER`], not every look.

use crate::secrets::VaultTarget;
use std::time::Duration;
use vault::KeyDir;

/// How often the daemon looks.
pub const INTERVAL: Duration = Duration::from_secs(30);

/// How long after a failed scheduled snapshot the next is tried.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);

/// How long a scheduled snapshot may take.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);

/// What one look did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// No unseal key in the home: nothing of ours to unseal.
    NoKey,
    /// Vault did not answer.
    Unreachable,
    /// Answered, and was not sealed (or not initialised: `up` does that).
    Fine,
    /// Was sealed; is now unsealed.
    Unsealed,
}

/// One look at Vault, unsealing it when it is sealed.
pub async fn look(target: &VaultTarget, keys: &KeyDir) -> Look {
    if !keys.exists(vault::UNSEAL_KEY).unwrap_or(false) {
        return Look::NoKey;
    }
    let Ok(client) = target.client() else {
        return Look::Unreachable;
    };
    match vault::status(&client).await {
        Err(e) => {
            tracing::debug!(address = %target.address, error = %e, "Vault did not answer");
            Look::Unreachable
        }
        Ok(s) if !(s.initialized && s.sealed) => Look::Fine,
        Ok(_) => match vault::unseal(&client, keys).await {
            Ok(true) => {
                tracing::info!(address = %target.address, "Vault was sealed (a restart); unsealed it");
                Look::Unsealed
            }
            Ok(false) => Look::Fine,
            Err(e) => {
                tracing::warn!(address = %target.address, error = %e, "Vault is sealed and unsealing it failed");
                Look::Unreachable
            }
        },
    }
}

/// The scheduled snapshot, when one is due and everything it needs is
/// there; `Err` says why it failed (logged by the caller).
async fn scheduled_snapshot(
    target: &VaultTarget,
    keys: &KeyDir,
    home: &std::path::Path,
) -> Result<(), String> {
    let now = jiff::Timestamp::now();
    if !crate::storage::vault_snapshot::due(home, now) {
        return Ok(());
    }
    let Ok(Some(token)) = keys.read(vault::ADMIN_TOKEN) else {
        return Ok(());
    };
    let s3 = match crate::storage::service::host_client_of(home) {
        Ok(Some(s3)) => s3,
        Ok(None) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let client = target.client().map_err(|e| e.to_string())?;
    let admin = client.with_token(token).with_timeout(SNAPSHOT_TIMEOUT);
    let taken = crate::storage::vault_snapshot::take_if_due(&admin, &s3, home, now)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(s) = taken {
        tracing::info!(
            key = s.key,
            size = s.size,
            "scheduled Vault snapshot stored"
        );
    }
    Ok(())
}

/// Looks every [`INTERVAL`] until `stop` fires; takes the scheduled
/// snapshot when Vault is up.
pub async fn watch(
    target: VaultTarget,
    keys: KeyDir,
    home: std::path::PathBuf,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut failed_at: Option<tokio::time::Instant> = None;
    loop {
        let up = matches!(look(&target, &keys).await, Look::Fine | Look::Unsealed);
        let retry = failed_at.is_none_or(|t| t.elapsed() >= RETRY_AFTER);
        if up && retry {
            match scheduled_snapshot(&target, &keys, &home).await {
                Ok(()) => failed_at = None,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduled Vault snapshot failed; retried later");
                    failed_at = Some(tokio::time::Instant::now());
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
