//! `hostctl certs list`: every certificate in the PKI with subject, issuer,
//! roles, expiry and file, so an operator can audit what the host issued.

use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::output::{Table, render};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// List every certificate under $HOSTCTL_HOME/pki.
    List,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    match args.command {
        CertsCommand::List => list(ctx),
    }
}

fn list(ctx: &Context) -> anyhow::Result<Exit> {
    let pki = crate::pki::open_existing(ctx)?;
    let inventory = pki.inventory().map_err(|e| coded(Exit::Pki, e))?;
    let text = render(ctx.output, &inventory, || {
        let mut t = Table::new(["SUBJECT", "ISSUER", "ROLES", "NOT AFTER", "PATH"]);
        for c in &inventory {
            let roles = if c.roles.is_empty() {
                "-".to_owned()
            } else {
                c.roles.join(",")
            };
            t.row([
                c.subject.clone(),
                c.issuer.clone(),
                roles,
                c.not_after.clone(),
                c.path.display().to_string(),
            ]);
        }
        t
    })?;
    crate::stdout::write(&text)?;
    Ok(Exit::Ok)
}
