//! `hostctl logs NODE [--unit U] [-f] [--tail N]`: the node's journal,
//! streamed by its agent's Node service over mutual TLS with the admin
//! identity. The CLI dials the node directly (the daemon is not a proxy):
//! the address comes from `--address`, else the running daemon (which
//! knows the resolved topology), else the topology (global `--topology`,
//! `./hostctl.yaml` or the built-in default) resolved against the declared
//! network.

use crate::workspace::Workspace;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use proto::v1::LogsRequest;
use proto::v1::node_client::NodeClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::agent_plane::NODE_SERVICE_PORT;
use crate::cli::Context;
use crate::daemon::topology::config_from_resolved;
use crate::daemon::{ControlClient, config::socket_path};
use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node (VM) name.
    pub node: String,
    /// Only this systemd unit, e.g. `kubelet`.
    #[arg(long, value_name = "UNIT")]
    pub unit: Option<String>,
    /// Keep streaming new lines until interrupted.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines to show before following (default: the node's default).
    #[arg(long, value_name = "N")]
    pub tail: Option<u32>,
    /// The node's Node service address, bypassing topology and daemon
    /// (`IP` uses port 7445).
    #[arg(long, value_name = "IP[:PORT]")]
    pub address: Option<String>,
}

pub(crate) fn parse_address(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let ip: IpAddr = s
        .parse()
        .map_err(|_| anyhow!("--address {s:?} is neither IP nor IP:PORT"))?;
    Ok(SocketAddr::new(ip, NODE_SERVICE_PORT))
}

/// Where `node`'s Node service listens: `address` if given, else as the
/// running daemon or the recorded topology knows it.
pub(crate) async fn node_address(
    ctx: &Context,
    node: &str,
    address: Option<&str>,
) -> anyhow::Result<SocketAddr> {
    if let Some(a) = address {
        return parse_address(a);
    }
    let home = ctx.home.root().to_owned();
    let from_config = |config: crate::daemon::DaemonConfig| {
        config
            .nodes
            .get(node)
            .and_then(|e| e.addresses.first().copied())
            .map(|ip| SocketAddr::new(ip, NODE_SERVICE_PORT))
            .ok_or_else(|| anyhow!("node {node:?} is not in the topology"))
    };
    if let Ok(mut client) = ControlClient::connect(&socket_path(&home)).await {
        let status = client.status().await?;
        return status
            .nodes
            .iter()
            .find(|n| n.meta.as_ref().is_some_and(|m| m.node == node))
            .and_then(|n| n.addresses.first())
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, NODE_SERVICE_PORT))
            .ok_or_else(|| anyhow!("the daemon knows no address for node {node:?}"));
    }
    let workspace = Workspace::recorded(ctx)?;
    from_config(config_from_resolved(home, &workspace.resolved))
}

/// A mutual-TLS channel to a node with the admin identity; the node's
/// certificate must carry `addr`'s IP as a SAN.
pub(crate) async fn dial(ctx: &Context, addr: SocketAddr) -> anyhow::Result<Channel> {
    let pki = crate::pki::open_existing(ctx)?;
    let admin = pki.admin_identity();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pki.agent_ca_pem()))
        .identity(Identity::from_pem(&admin.cert_pem, admin.key_pem.expose()))
        .domain_name(addr.ip().to_string());
    Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot reach the node agent at {addr}"))
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    crate::cli::block_on(async {
        let addr = node_address(ctx, &args.node, args.address.as_deref()).await?;
        let mut client = NodeClient::new(dial(ctx, addr).await?);
        let mut stream = client
            .logs(LogsRequest {
                unit: args.unit.clone().unwrap_or_default(),
                follow: args.follow,
                tail: args.tail,
            })
            .await
            .with_context(|| format!("{} refused the logs request", args.node))?
            .into_inner();
        while let Some(chunk) = stream.message().await? {
            for line in &chunk.lines {
                if args.unit.is_some() || line.unit.is_empty() {
                    crate::stdout::line(format_args!("{}", line.message))?;
                } else {
                    crate::stdout::line(format_args!("{}: {}", line.unit, line.message))?;
                }
            }
            if let Some(err) = chunk.error {
                return Err(anyhow!("{}: {}", args.node, err.message));
            }
        }
        Ok(Exit::Ok)
    })?
}
