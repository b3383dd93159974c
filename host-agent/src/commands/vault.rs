//! `hostctl vault status|unseal|snapshot|snapshots|restore-snapshot`:
//! mgmt's Vault as hostctl reaches it (its reserved MetalLB address, or
//! `$HOSTCTL_VAULT_ADDRESS`), trusting only the lab root. `status` shows
//! initialised / sealed / version and holds no secret (`-o json`: `{
//! "address", "initialized", "sealed", "version", "standby" }`); `unseal`
//! opens a sealed Vault with the key in `$HOSTCTL_HOME/pki/vault/unseal.key`
//! (after a restart; `up` does it too, as part of the Vault add-on's
//! bootstrap).
//!
//! `snapshot` takes a raft snapshot with hostctl's admin token and stores
//! it in the host's object store (`vault/mgmt/<stamp>.snap`;
//! `storage::vault_snapshot`; `-o json`: `{ "key", "size", "sha256",
//! "file", "pruned" }`); `snapshots` lists the stored ones (`-o
//! json`: `[ { "key", "size", "last_modified" } ]`); `restore-snapshot
//! [NAME] --yes` puts one back (the newest without NAME), replacing all of
//! Vault's data.

use crate::cli::{Context, block_on, coded};
use crate::exit::Exit;
use crate::output::{Table, render};
use crate::secrets::{VaultTarget, key_dir};
use crate::storage::vault_snapshot;
use crate::workspace::Workspace;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: VaultCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum VaultCommand {
    /// Whether Vault is initialised and sealed, and its version.
    Status,
    /// Unseal Vault with the key hostctl keeps (a no-op when unsealed).
    Unseal,
    /// Take a raft snapshot and store it in the host's object store.
    Snapshot,
    /// The raft snapshots in the host's object store, oldest first.
    Snapshots,
    /// Replace all of Vault's data with a stored snapshot (the newest
    /// without NAME); Vault then unseals with the snapshot's unseal key.
    RestoreSnapshot {
        /// The snapshot (`20261203T190509Z.snap` or `mgmt/…`).
        name: Option<String>,
        /// Confirm: everything written to Vault since the snapshot is lost.
        #[arg(long)]
        yes: bool,
    },
}

/// A snapshot's transfer may take a while; a stalled one still ends.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);

/// What `snapshots -o json` lists.
#[derive(Serialize)]
struct Listed {
    key: String,
    size: u64,
    last_modified: String,
}

#[derive(Serialize)]
struct StatusView {
    address: String,
    #[serde(flatten)]
    status: vault::VaultStatus,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    if let VaultCommand::RestoreSnapshot { yes: false, .. } = args.command {
        return Err(coded(
            Exit::Usage,
            anyhow::anyhow!(
                "restore-snapshot replaces all of Vault's data with the snapshot's: what was \
                 written since is lost, and Vault then unseals only with the unseal key of the \
                 Vault the snapshot was taken from (keep $HOSTCTL_HOME/pki/vault/unseal.key of \
                 that time). Run again with --yes to restore"
            ),
        ));
    }
    let workspace = Workspace::recorded(ctx)?;
    let pki = certs::Pki::open(ctx.home.root()).map_err(|e| coded(Exit::Pki, e))?;
    let target = VaultTarget::from_env(&workspace.resolved, &pki)?;
    let client = target.client()?;
    match &args.command {
        VaultCommand::Status => {
            let status = block_on(vault::status(&client))??;
            let view = StatusView {
                address: target.address.clone(),
                status,
            };
            crate::stdout::write(render(ctx.output, &view, || {
                let mut t = Table::new(["ADDRESS", "INITIALISED", "SEALED", "VERSION"]);
                t.row([
                    view.address.clone(),
                    view.status.initialized.to_string(),
                    view.status.sealed.to_string(),
                    view.status.version.clone(),
                ]);
                t
            })?)?;
        }
        VaultCommand::Unseal => {
            let keys = vault::KeyDir::new(key_dir(ctx.home.root()));
            let opened = block_on(vault::unseal(&client, &keys))??;
            crate::stdout::line(if opened {
                format!("{}: unsealed", target.address)
            } else {
                format!("{}: already unsealed", target.address)
            })?;
        }
        VaultCommand::Snapshot => {
            let (admin, s3) = snapshot_clients(ctx, &workspace, &client)?;
            let taken = block_on(vault_snapshot::take(
                &admin,
                &s3,
                ctx.home.root(),
                jiff::Timestamp::now(),
                vault_snapshot::KEEP_LOCAL,
            ))?
            .map_err(|e| coded(Exit::Precondition, e))?;
            crate::stdout::write(render(ctx.output, &taken, || {
                let mut t = Table::new(["OBJECT", "SIZE", "SHA256"]);
                t.row([
                    format!("vault/{}", taken.key),
                    taken.size.to_string(),
                    taken.sha256.clone(),
                ]);
                t
            })?)?;
        }
        VaultCommand::Snapshots => {
            let (_, s3) = snapshot_clients(ctx, &workspace, &client)?;
            let listed: Vec<Listed> = block_on(vault_snapshot::list(&s3))?
                .map_err(|e| coded(Exit::Precondition, e))?
                .into_iter()
                .map(|e| Listed {
                    key: e.key,
                    size: e.size,
                    last_modified: e.last_modified,
                })
                .collect();
            crate::stdout::write(render(ctx.output, &listed, || {
                let mut t = Table::new(["OBJECT", "SIZE", "STORED"]);
                for l in &listed {
                    t.row([
                        format!("vault/{}", l.key),
                        l.size.to_string(),
                        l.last_modified.clone(),
                    ]);
                }
                t
            })?)?;
        }
        VaultCommand::RestoreSnapshot { name, .. } => {
            let (admin, s3) = snapshot_clients(ctx, &workspace, &client)?;
            let restored = block_on(vault_snapshot::restore(
                &admin,
                &s3,
                ctx.home.root(),
                name.as_deref(),
            ))?
            .map_err(|e| coded(Exit::Precondition, e))?;
            crate::stdout::line(format!(
                "{}: restored vault/{} ({} bytes, sha256 {}); if Vault is sealed, unseal it with \
                 the snapshot's unseal key (`hostctl vault unseal` uses \
                 $HOSTCTL_HOME/pki/vault/unseal.key)",
                target.address, restored.key, restored.size, restored.sha256
            ))?;
        }
    }
    Ok(Exit::Ok)
}

/// hostctl's admin token on `client` (long timeout) and the object
/// store's host client.
fn snapshot_clients(
    ctx: &Context,
    workspace: &Workspace,
    client: &vault::VaultClient,
) -> anyhow::Result<(vault::VaultClient, crate::storage::s3::S3)> {
    let keys = vault::KeyDir::new(key_dir(ctx.home.root()));
    let token = keys.read(vault::ADMIN_TOKEN)?.ok_or_else(|| {
        coded(
            Exit::Precondition,
            anyhow::anyhow!(
                "no Vault admin token at {}: run `hostctl up` (the Vault add-on's bootstrap writes it)",
                keys.file(vault::ADMIN_TOKEN).display()
            ),
        )
    })?;
    let admin = client.with_token(token).with_timeout(SNAPSHOT_TIMEOUT);
    let s3 = crate::commands::storage::real(ctx, &workspace.resolved)
        .host_client()
        .map_err(|e| coded(Exit::Precondition, e))?;
    Ok((admin, s3))
}
