//! `hostctl daemon`: run the host agent's services in the foreground until
//! SIGTERM, SIGINT or `Control.Shutdown`. Logs go to stderr (a daemon
//! started by the CLI has them appended to `$HOSTCTL_HOME/daemon.log`).

use crate::workspace::Workspace;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{Context, coded};
use crate::daemon::lifecycle::{LifecycleError, PidLock};
use crate::daemon::topology::config_from_resolved;
use crate::daemon::{Daemon, DaemonConfig};
use crate::exit::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to bind, and only it (default: the topology's
    /// hostAgent.listen, else the node network's host address and loopback).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<IpAddr>,
    /// Mutual-TLS Host service port (default: the topology's, else 7443; 0 = any).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Enrolment port (default: the Host service port + 1; 0 = any).
    #[arg(long, value_name = "PORT")]
    pub enrol_port: Option<u16>,
    /// The metrics endpoint's port (default 7448; 0 = any, also the
    /// default when `--port 0`).
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// Address nodes are told to dial (default: the topology's host address,
    /// else the listen address).
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<IpAddr>,
}

/// Logs to stderr (its log file), filtered by `HOSTCTL_LOG` (default `info`).
fn init_logging() {
    crate::logging::init("info");
}

/// The topology (global `--topology`, else `./hostctl.yaml`, else the
/// built-in default) decides which nodes may enrol and where to listen;
/// the flags override the listen side.
async fn config(ctx: &Context, args: &Args) -> anyhow::Result<DaemonConfig> {
    let home = ctx.home.root().to_owned();
    // The addresses `up` recorded: the same ones it gave the nodes.
    let workspace = Workspace::recorded(ctx)?;
    let mut config = config_from_resolved(home, &workspace.resolved);
    if let Some(listen) = args.listen {
        // An explicit address is all the user asked for.
        config.listen = listen;
        config.also_loopback = false;
    }
    if let Some(port) = args.port {
        config.port = port;
        config.enrol_port = crate::agent_plane::enrol_port_for(port);
    }
    if let Some(port) = args.enrol_port {
        config.enrol_port = port;
    }
    if args.port == Some(0) && args.enrol_port.is_none() {
        config.enrol_port = 0;
    }
    if let Some(port) = args.metrics_port {
        config.metrics_port = Some(port);
    } else if args.port == Some(0) {
        config.metrics_port = Some(0);
    }
    if let Some(advertise) = args.advertise {
        config.advertise = Some(advertise);
    }
    Ok(config)
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    init_logging();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let home = ctx.home.root().to_owned();
    crate::cli::block_on(async move {
        let config = config(ctx, args).await?;
        let _lock = PidLock::acquire(&home).map_err(|e| match e {
            LifecycleError::AlreadyRunning { .. } => coded(Exit::Precondition, e),
            other => anyhow::Error::new(other),
        })?;
        let pki = crate::pki::open_existing(ctx).context("cannot load the PKI")?;
        let daemon = Daemon::start(config, Arc::new(pki))
            .await
            .context("cannot start the daemon")?;
        let stop = daemon.stop_handle();
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
            stop.request();
        });
        daemon
            .wait()
            .await
            .context("daemon stopped with an error")?;
        Ok(Exit::Ok)
    })?
}
