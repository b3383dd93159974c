//! `hostctl status`'s Vault line: shown once this home has bootstrapped
//! Vault (its unseal key exists), from `sys/health` — initialised, sealed,
//! version — and never a secret. Unreachable is a state, not a failure:
//! status must not fail because mgmt is down.

use super::StatusView;
use crate::cli::Context;
use crate::secrets::{VaultTarget, key_dir};
use crate::workspace::Workspace;
use serde::Serialize;
use std::time::Duration;

/// Vault as `status` shows it.
#[derive(Debug, Serialize)]
pub struct VaultView {
    pub address: String,
    /// `None` when it did not answer (then `error` says why).
    #[serde(flatten)]
    pub status: Option<vault::VaultStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Adds Vault's state when this home bootstrapped one.
pub async fn with_vault(mut v: StatusView, ctx: &Context) -> StatusView {
    v.vault = read(ctx).await;
    v
}

/// Vault's state (`None` when this home has not bootstrapped one, or
/// cannot say where it is); `status` and `verify`'s VAULT fact read it.
pub async fn read(ctx: &Context) -> Option<VaultView> {
    let keys = vault::KeyDir::new(key_dir(ctx.home.root()));
    if !keys.exists(vault::UNSEAL_KEY).unwrap_or(false) {
        return None;
    }
    let target = Workspace::recorded(ctx)
        .ok()
        .zip(certs::Pki::open(ctx.home.root()).ok())
        .and_then(|(w, pki)| VaultTarget::from_env(&w.resolved, &pki).ok())?;
    let answer = match target.client() {
        Ok(c) => vault::status(&c.with_timeout(Duration::from_secs(3)))
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    Some(VaultView {
        address: target.address,
        error: answer.as_ref().err().cloned(),
        status: answer.ok(),
    })
}

/// The table's Vault line.
pub fn line(v: &VaultView) -> String {
    match &v.status {
        Some(s) => format!(
            "vault {}: {}, {}, version {}",
            v.address,
            if s.initialized {
                "initialised"
            } else {
                "not initialised"
            },
            if s.sealed {
                "SEALED (hostctl vault unseal)"
            } else {
                "unsealed"
            },
            s.version
        ),
        None => format!(
            "vault {}: unreachable ({})",
            v.address,
            v.error.as_deref().unwrap_or("no answer")
        ),
    }
}
