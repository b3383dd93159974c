//! Vault (or OpenBao, API-compatible for all of this) on mgmt, bootstrapped
//! by hostctl through the HTTP API alone — no `vault` CLI, no shell
//! (SPEC §1.4, ADR-004; docs/secrets.md).
//!
//! - [`VaultClient`]: HTTPS with Vault's CA pinned, `X-Vault-Token`, JSON,
//!   bounded answers, a per-request timeout, [`VaultError`] with Vault's
//!   `errors`.
//! - [`bootstrap`]: wait → init (1-of-1; key and root token on disk first)
//!   → unseal → policies → admin token (root revoked) → KV v2 → a JWT auth
//!   mount per cluster → PKI intermediate under the lab root. Each step
//!   reads before it writes; the [`Report`] says what changed.
//! - [`status`] and [`unseal`] for `hostctl status` and after a restart.
//! - [`snapshot`]: raft snapshots streamed to a file and back.
//!
//! Tokens and keys are [`Secret`]s: `Debug`/`Display` print `<redacted>`,
//! and no error carries one.

mod bootstrap;
mod client;
pub mod configure;
mod error;
mod files;
mod health;
mod init;
mod report;
mod secret;
pub mod snapshot;

pub use bootstrap::{BootstrapConfig, bootstrap};
pub use client::{Answer, DEFAULT_TIMEOUT, MAX_BODY, VaultClient};
pub use configure::jwt::ClusterAuth;
pub use configure::pki::{PkiConfig, RootSigner};
pub use error::VaultError;
pub use files::{ADMIN_TOKEN, DIR_MODE, FILE_MODE, KeyDir, ROOT_TOKEN, UNSEAL_KEY};
pub use health::{VaultStatus, WaitPolicy, status, wait_active, wait_ready};
pub use init::unseal;
pub use report::{Change, Report};
pub use secret::Secret;
