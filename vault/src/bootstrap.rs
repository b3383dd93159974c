//! The whole bootstrap, in order, each step reading Vault's state before it
//! writes: wait for `sys/health`, initialise (or check the key is on disk),
//! unseal, authenticate, policies, the admin token (root revoked), KV v2,
//! the JWT mounts, the PKI. The [`Report`] lists what changed; a second run
//! over a configured Vault returns an empty one.

use std::path::PathBuf;

use crate::client::VaultClient;
use crate::configure::jwt::{self, ClusterAuth};
use crate::configure::pki::{self, PkiConfig, RootSigner};
use crate::configure::token::{self, Credential};
use crate::configure::{kv, policy};
use crate::error::VaultError;
use crate::files::KeyDir;
use crate::health::{self, WaitPolicy};
use crate::init;
use crate::report::{Change, Report};

/// What to bootstrap.
#[derive(Debug, Clone)]
pub struct BootstrapConfig {
    /// Where the unseal key and tokens live (production:
    /// `$HOSTCTL_HOME/pki/vault/`).
    pub key_dir: PathBuf,
    /// Every cluster whose workloads log in to Vault.
    pub clusters: Vec<ClusterAuth>,
    /// The intermediate CA and cert-manager's role.
    pub pki: PkiConfig,
    /// How long to wait for Vault to answer and to become active.
    pub wait: WaitPolicy,
}

/// Brings Vault to hostctl's configuration and reports what it changed.
pub async fn bootstrap(
    client: &VaultClient,
    config: &BootstrapConfig,
    signer: &dyn RootSigner,
) -> Result<Report, VaultError> {
    for (i, c) in config.clusters.iter().enumerate() {
        jwt::check_name(i, &c.name)?;
    }
    let keys = KeyDir::new(&config.key_dir);
    let mut report = Report::default();
    let state = health::wait_ready(client, config.wait).await?;
    init::ensure_initialised(client, &keys, &state, &mut report).await?;
    if init::unseal(client, &keys).await? {
        report.push(Change::Unsealed);
    }
    health::wait_active(client, config.wait).await?;

    let credential = token::authenticate(client, &keys).await?;
    let current = match &credential {
        Credential::Admin(t) | Credential::Root(t) => client.with_token(t.clone()),
    };
    let names: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
    policy::ensure_policies(&current, &names, &mut report).await?;
    let admin = token::ensure_admin_token(client, &keys, credential, &mut report).await?;

    // Everything else runs as hostctl-admin, so the first run already
    // proves that policy is enough for every later one.
    let admin = client.with_token(admin);
    kv::ensure_kv(&admin, &mut report).await?;
    jwt::ensure_jwt(&admin, &config.clusters, &mut report).await?;
    pki::ensure_pki(&admin, &config.pki, signer, &mut report).await?;
    Ok(report)
}
