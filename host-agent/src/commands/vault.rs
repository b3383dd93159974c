//! `hostctl vault status|unseal`: mgmt's Vault as hostctl reaches it (its
//! reserved MetalLB address, or `$HOSTCTL_VAULT_ADDRESS`), trusting only
//! the lab root. `status` shows initialised / sealed / version and holds no
//! secret (`-o json`: `{ "address", "initialized", "sealed", "version",
//! "standby" }`); `unseal` opens a sealed Vault with the key in
//! `$HOSTCTL_HOME/pki/vault/unseal.key` (after a restart; `up` does it too,
//! as part of the Vault add-on's bootstrap).

use crate::cli::{Context, block_on, coded};
use crate::exit::Exit;
use crate::output::{Table, render};
use crate::secrets::{VaultTarget, key_dir};
use crate::workspace::Workspace;
use serde::Serialize;

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
}

#[derive(Serialize)]
struct StatusView {
    address: String,
    #[serde(flatten)]
    status: vault::VaultStatus,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let workspace = Workspace::recorded(ctx)?;
    let pki = certs::Pki::open(ctx.home.root()).map_err(|e| coded(Exit::Pki, e))?;
    let target = VaultTarget::from_env(&workspace.resolved, &pki)?;
    let client = target.client()?;
    match args.command {
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
    }
    Ok(Exit::Ok)
}
