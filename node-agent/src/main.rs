//! `node-agent --config PATH`: the process systemd starts on every node.
#![cfg_attr(
    test,
    allow(clippy::disallowed_methods, reason = "unit tests write fixtures")
)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use node_agent::agent;
use node_agent::config::{self, Config, LogSourceKind};
use telemetry::{Pipeline, TelemetryConfig};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How long spans still queued at shutdown get to reach the host.
const TELEMETRY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);
/// Spans are few and a traced `up` waits for them: batch briefly.
const NODE_BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// Exit status when only a new enrolment token can help (no usable
/// certificate, and no token or a spent or refused one): restarting with
/// the same configuration would fail the same way, and the systemd unit
/// hostctl installs does not.
const NEEDS_NEW_TOKEN: u8 = proto::contract::EXIT_NEEDS_NEW_TOKEN;

/// hostctl node agent.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (YAML).
    #[arg(long, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

fn main() -> ExitCode {
    node_agent::memory::cap_malloc_arenas();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("node-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match init_tracing(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("node-agent: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(config, telemetry) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("node-agent: {e:#}");
            let needs_token = e
                .downcast_ref::<agent::AgentError>()
                .is_some_and(agent::AgentError::needs_new_token);
            if needs_token {
                ExitCode::from(NEEDS_NEW_TOKEN)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(config: Config, mut telemetry: Pipeline) -> anyhow::Result<()> {
    // Two worker threads are plenty for a handful of streams and keep the
    // resident size small.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let host = config.clone();
    let result = runtime.block_on(async {
        let started = tokio::select! {
            s = agent::start(config) => s?,
            () = shutdown_signal() => return Ok(()),
        };
        // Spans go to the host (docs/tracing.md), with the node's current
        // certificate: re-pointed after every renewal, since the host
        // refuses the old certificate once the new one is in use.
        let tls = node_agent::identity::host_tls(&host, Some(&started.identity()));
        let endpoint = format!("https://{}", host.host.endpoint);
        if let Err(e) = telemetry.connect(&endpoint, tls) {
            tracing::warn!("spans will not be relayed: {e}");
        }
        let relay = telemetry
            .relay_target()
            .map(|target| follow_renewals(target, host, endpoint, started.identity_cell()));
        let relay = async move {
            match relay {
                Some(follow) => follow.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = started.run(shutdown_signal()) => r?,
            () = relay => {}
        }
        Ok(())
    });
    let summary = runtime.block_on(telemetry.shutdown_async(TELEMETRY_DEADLINE));
    if let Some(line) = summary.line() {
        tracing::warn!("{line}");
    }
    result
}

/// Re-points the span relay at the host with each renewed certificate;
/// ends only when the identity cell is gone.
async fn follow_renewals(
    target: telemetry::RelayTarget,
    config: Config,
    endpoint: String,
    cell: node_agent::identity::IdentityCell,
) {
    let mut renewed = cell.subscribe();
    while renewed.changed().await.is_ok() {
        let identity = renewed.borrow_and_update().clone();
        let tls = node_agent::identity::host_tls(&config, Some(&identity));
        match target.connect(&endpoint, tls) {
            Ok(()) => tracing::info!("span relay now uses the renewed certificate"),
            Err(e) => tracing::warn!("spans will not be relayed: {e}"),
        }
    }
}

/// SIGTERM (systemd stop) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Logs to stderr (the journal under systemd) and, with `logSource: file`,
/// also to the file the `Logs` RPC reads; records the spans of calls a
/// traced host makes (relayed through the host once enrolled).
fn init_tracing(config: &Config) -> anyhow::Result<Pipeline> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let telemetry = Pipeline::relayed(
        "node-agent",
        &TelemetryConfig {
            batch_delay: NODE_BATCH_DELAY,
            ..TelemetryConfig::default()
        },
    );
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(telemetry.layer());
    if config.log_source == LogSourceKind::File {
        let path = agent::log_file_path(config);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::io::stderr.and(std::sync::Mutex::new(file))),
            )
            .init();
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init();
    }
    Ok(telemetry)
}
