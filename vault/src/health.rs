//! `sys/health`: whether Vault answers, is initialised, is sealed, and its
//! version, for bootstrap's first step and for `hostctl status`.
//!
//! Vault encodes its state in the status code (501 not initialised, 503
//! sealed, 429/472/473 standby kinds); the query parameters below make every
//! state answer 200 with the same JSON body, so one decoder reads them all.

use std::time::{Duration, Instant};

use hyper::Method;
use serde::{Deserialize, Serialize};

use crate::client::{VaultClient, decode};
use crate::error::VaultError;

const HEALTH: &str =
    "/v1/sys/health?uninitcode=200&sealedcode=200&standbyok=true&perfstandbyok=true";

/// What `hostctl status` shows about Vault. Holds no secret, so it may go
/// to `status -o json` as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultStatus {
    /// Whether `sys/init` has run.
    pub initialized: bool,
    /// Whether the barrier is sealed.
    pub sealed: bool,
    /// The server's version string (e.g. `2.7.2` for OpenBao).
    pub version: String,
    /// Whether this node is a standby (answers, but does not serve writes).
    #[serde(default)]
    pub standby: bool,
}

/// How long and how often bootstrap polls a server that does not answer
/// yet (a pod that is still starting).
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    /// Give up after this long.
    pub deadline: Duration,
    /// Pause between attempts.
    pub interval: Duration,
}

impl Default for WaitPolicy {
    /// Generous: a Vault pod on a fresh cluster pulls its image first.
    fn default() -> Self {
        WaitPolicy {
            deadline: Duration::from_secs(600),
            interval: Duration::from_secs(2),
        }
    }
}

/// Vault's state now; an unreachable server is an error.
pub async fn status(client: &VaultClient) -> Result<VaultStatus, VaultError> {
    let body = client.call(Method::GET, HEALTH, None).await?;
    decode("GET", "/v1/sys/health", body)
}

/// Polls [`status`] until the server answers or `policy.deadline` passes.
pub async fn wait_ready(
    client: &VaultClient,
    policy: WaitPolicy,
) -> Result<VaultStatus, VaultError> {
    wait_for(client, policy, |_| true).await
}

/// Polls until Vault is unsealed and active (raft elects itself leader a
/// moment after the unseal; writes before that fail).
pub async fn wait_active(
    client: &VaultClient,
    policy: WaitPolicy,
) -> Result<VaultStatus, VaultError> {
    wait_for(client, policy, |s| !s.sealed && !s.standby).await
}

async fn wait_for(
    client: &VaultClient,
    policy: WaitPolicy,
    done: impl Fn(&VaultStatus) -> bool,
) -> Result<VaultStatus, VaultError> {
    let start = Instant::now();
    loop {
        let last = match status(client).await {
            Ok(s) if done(&s) => return Ok(s),
            Ok(s) => format!("{s:?}"),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= policy.deadline {
            return Err(VaultError::NotReady {
                address: client.address().to_owned(),
                waited: start.elapsed(),
                last,
            });
        }
        tokio::time::sleep(policy.interval).await;
    }
}
