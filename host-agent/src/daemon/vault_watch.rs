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

use crate::secrets::VaultTarget;
use std::time::Duration;
use vault::KeyDir;

/// How often the daemon looks.
pub const INTERVAL: Duration = Duration::from_secs(30);

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

/// Looks every [`INTERVAL`] until `stop` fires.
pub async fn watch(
    target: VaultTarget,
    keys: KeyDir,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        look(&target, &keys).await;
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
