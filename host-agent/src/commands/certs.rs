//! `hostctl certs`: the PKI's inventory, and the lifecycle of node agents'
//! certificates.
//!
//! - `list`: every certificate in the PKI with subject, issuer, roles,
//!   expiry and file, so an operator can audit what the host issued;
//! - `renew NODE`: asks the node's agent (over mutual TLS with the admin
//!   identity) to renew its certificate now, by the same path its automatic
//!   renewal takes, and prints the new expiry;
//! - `revoke NODE`: raises the node's revocation floor so that no
//!   certificate it holds is accepted any more (docs/security.md, "Renewal
//!   and revocation"). Through the daemon when it runs (it holds the floors
//!   in memory and ends the node's open streams); written to the PKI
//!   directly when it does not.

use std::time::SystemTime;

use anyhow::{Context as _, anyhow};
use proto::v1::RenewNowRequest;
use proto::v1::node_client::NodeClient;
use serde::Serialize;

use crate::cli::{Context, coded};
use crate::commands::logs::{dial, node_address};
use crate::daemon::topology::config_from_resolved;
use crate::daemon::{ControlClient, config::socket_path};
use crate::exit::Exit;
use crate::output::{Table, render};
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// List every certificate under $HOSTCTL_HOME/pki.
    List,
    /// Renew a node agent's certificate now (agents also renew by themselves
    /// at two thirds of its lifetime).
    Renew {
        /// The node (VM) name.
        node: String,
        /// The node's Node service address, bypassing topology and daemon
        /// (`IP` uses port 7445).
        #[arg(long, value_name = "IP[:PORT]")]
        address: Option<String>,
    },
    /// Revoke every certificate a node agent holds: the host refuses it from
    /// now on, until the node enrols again with a new token.
    Revoke {
        /// The node (VM) name.
        node: String,
    },
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    match &args.command {
        CertsCommand::List => list(ctx),
        CertsCommand::Renew { node, address } => renew(ctx, node, address.as_deref()),
        CertsCommand::Revoke { node } => revoke(ctx, node),
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

/// What `renew` and `revoke` print (`-o json` gives the same fields).
#[derive(Debug, Serialize)]
struct Outcome {
    node: String,
    action: &'static str,
    /// `renew`: the new certificate's notAfter; `revoke`: the floor.
    at: String,
    message: String,
}

fn print(ctx: &Context, outcome: &Outcome) -> anyhow::Result<Exit> {
    let text = render(ctx.output, outcome, || {
        let mut t = Table::new(["NODE", "ACTION", "AT", "MESSAGE"]);
        t.row([
            outcome.node.clone(),
            outcome.action.to_owned(),
            outcome.at.clone(),
            outcome.message.clone(),
        ]);
        t
    })?;
    crate::stdout::write(&text)?;
    Ok(Exit::Ok)
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    certs::rfc3339(i64::try_from(secs).unwrap_or(i64::MAX))
}

fn renew(ctx: &Context, node: &str, address: Option<&str>) -> anyhow::Result<Exit> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let not_after = crate::cli::block_on(async {
        let addr = node_address(ctx, node, address).await?;
        let mut client = NodeClient::new(dial(ctx, addr).await?);
        let r = client
            .renew_certificate(RenewNowRequest {})
            .await
            .with_context(|| format!("{node} refused the renewal request"))?
            .into_inner();
        if let Some(e) = r.error {
            return Err(anyhow!(
                "{node} could not renew its certificate: {}",
                e.message
            ));
        }
        r.not_after
            .as_ref()
            .and_then(proto::system_time)
            .ok_or_else(|| anyhow!("{node} renewed but did not say until when"))
    })??;
    print(
        ctx,
        &Outcome {
            node: node.to_owned(),
            action: "renewed",
            at: rfc3339(not_after),
            message:
                "the agent uses its new certificate; the old one is refused from its next call"
                    .into(),
        },
    )
}

fn revoke(ctx: &Context, node: &str) -> anyhow::Result<Exit> {
    let home = ctx.home.root().to_owned();
    let through_daemon = crate::cli::block_on(async {
        match ControlClient::connect(&socket_path(&home)).await {
            Ok(mut client) => Some(client.revoke_node(node).await),
            Err(_) => None,
        }
    })?;
    let floor = match through_daemon {
        Some(answer) => answer?,
        None => {
            // No daemon: check the node against the recorded topology, then
            // write the floor the next daemon start will load.
            let workspace = Workspace::recorded(ctx)?;
            let config = config_from_resolved(home, &workspace.resolved);
            if !config.nodes.contains_key(node) {
                return Err(anyhow!("node {node:?} is not in the topology"));
            }
            let pki = crate::pki::open_existing(ctx)?;
            let floors = pki.cert_floors().map_err(|e| coded(Exit::Pki, e))?;
            floors
                .revoke_all(node, SystemTime::now())
                .map_err(|e| coded(Exit::Pki, e))?
        }
    };
    print(
        ctx,
        &Outcome {
            node: node.to_owned(),
            action: "revoked",
            at: rfc3339(floor),
            message: "every certificate issued to the node before this time is refused; \
                      to bring the node back it must enrol with a new token \
                      (remove and recreate its machine with `hostctl up`)"
                .into(),
        },
    )
}
