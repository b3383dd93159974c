//! Host fan-in: how many simulated node agents can one `hostctl daemon`
//! take, each on its own mutual-TLS connection with its own certificate,
//! each reporting once a second?
//!
//! The daemon runs as a subprocess (the release `hostctl` binary) so its
//! memory is measured alone; the agents share this process. Both share the
//! machine's cores, so the latencies include the clients' own scheduling.
//!
//! `cargo bench -p host-agent --bench fan_in`
//! Environment: `FAN_IN_AGENTS` (default `500,2000,5000`), `FAN_IN_SECS`
//! (measured seconds per level, default 20).
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

use test_support::host_daemon as support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_agent::daemon::ControlClient;
use proto::v1::host_client::HostClient;
use support::{BoxError, Creds, Home, Mint, host_channel, install_crypto, report};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

const HOSTCTL: &str = env!("CARGO_BIN_EXE_hostctl");
/// TLS handshakes in flight while the agents connect.
const CONNECT_CONCURRENCY: usize = 64;

struct Row {
    agents: usize,
    secs: u64,
    acked: usize,
    stored: u64,
    errors: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    rss_idle_kib: u64,
    rss_end_kib: u64,
    rss_peak_kib: u64,
    /// Daemon CPU time during the measured run, in % of one core.
    cpu_percent: f64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU time of `pid` in clock ticks (`/proc/<pid>/stat`
/// fields 14 and 15, counted after the parenthesised command name).
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Linux's USER_HZ, the unit of `/proc/<pid>/stat` times, on every
/// mainstream architecture.
const TICKS_PER_SEC: f64 = 100.0;

async fn wait_for_socket(home: &Path) -> Result<ControlClient, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = ControlClient::connect(&home.join("daemon.sock")).await
            && c.status().await.is_ok()
        {
            return Ok(c);
        }
        if Instant::now() > deadline {
            return Err("the daemon never answered".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connect_all(
    ca: &str,
    host: SocketAddr,
    creds: Vec<Creds>,
) -> Result<Vec<Channel>, BoxError> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut set = JoinSet::new();
    for (i, c) in creds.into_iter().enumerate() {
        let (gate, ca) = (gate.clone(), ca.to_owned());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let ch = host_channel(&ca, host, Some(&c)).await?;
            Ok::<_, BoxError>((i, ch))
        });
    }
    let mut out = Vec::with_capacity(set.len());
    while let Some(r) = set.join_next().await {
        out.push(r??);
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, ch)| ch).collect())
}

/// One agent: a report every second from `start + offset` until `end`,
/// waiting for each ack. Returns the latencies and whether it failed.
async fn agent(
    node: String,
    ch: Channel,
    start: tokio::time::Instant,
    end: tokio::time::Instant,
) -> (Vec<Duration>, bool) {
    let (tx, rx) = mpsc::channel(2);
    let mut acks = match HostClient::new(ch).report(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(_) => return (Vec::new(), true),
    };
    let mut tick = tokio::time::interval_at(start, Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut latencies = Vec::new();
    for seq in 1.. {
        if tick.tick().await >= end {
            break;
        }
        let sent = Instant::now();
        if tx.send(report(&node, "bench", seq, 1)).await.is_err() {
            return (latencies, true);
        }
        match acks.message().await {
            Ok(Some(ack)) if ack.seq == seq => latencies.push(sent.elapsed()),
            _ => return (latencies, true),
        }
    }
    (latencies, false)
}

async fn level(agents: usize, secs: u64) -> Result<Row, BoxError> {
    let home = Home::new()?;
    let issuer = home.agent_ca_issuer()?;
    let names: Vec<String> = (0..agents).map(|i| format!("bench-{i:05}")).collect();
    let creds = names
        .iter()
        .map(|n| Mint::node(n).sign(&issuer))
        .collect::<Result<Vec<_>, _>>()?;
    let mut daemon = tokio::process::Command::new(HOSTCTL)
        .arg("--home")
        .arg(home.path())
        .args(["daemon", "--listen", "127.0.0.1", "--port", "0"])
        .args(["--advertise", "127.0.0.1"])
        .env("HOSTCTL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = daemon.id().ok_or("daemon has no pid")?;
    let mut control = wait_for_socket(home.path()).await?;
    let host: SocketAddr = control.status().await?.host_endpoint.parse()?;
    let rss_idle_kib = proc_kib(pid, "VmRSS:");

    let channels = connect_all(&home.ca_pem(), host, creds).await?;
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(secs);
    let ticks_before = cpu_ticks(pid);
    let mut set = JoinSet::new();
    for (i, (node, ch)) in names.into_iter().zip(channels).enumerate() {
        // Spread the agents evenly over each second, as real timers drift.
        let offset = Duration::from_micros((i as u64 * 1_000_000) / agents as u64);
        set.spawn(agent(node, ch, start + offset, end + offset));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(r) = set.join_next().await {
        let (l, failed) = r?;
        latencies.extend(l);
        errors += usize::from(failed);
    }
    let cpu_percent = (cpu_ticks(pid) - ticks_before) as f64 / TICKS_PER_SEC / secs as f64 * 100.0;
    let rss_end_kib = proc_kib(pid, "VmRSS:");
    let rss_peak_kib = proc_kib(pid, "VmHWM:");
    let stored = control
        .status()
        .await?
        .nodes
        .iter()
        .map(|n| n.reports_stored)
        .sum();
    control.shutdown().await?;
    tokio::time::timeout(Duration::from_secs(30), daemon.wait()).await??;

    latencies.sort_unstable();
    let pick = |q: f64| {
        let idx = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(idx).copied().unwrap_or_default()
    };
    Ok(Row {
        agents,
        secs,
        acked: latencies.len(),
        stored,
        errors,
        p50: pick(0.50),
        p99: pick(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        rss_idle_kib,
        rss_end_kib,
        rss_peak_kib,
        cpu_percent,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() -> Result<(), BoxError> {
    install_crypto();
    let levels: Vec<usize> = std::env::var("FAN_IN_AGENTS")
        .unwrap_or_else(|_| "500,2000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let secs: u64 = env_or("FAN_IN_SECS", 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "{:>7} {:>5} {:>10} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "agents",
        "secs",
        "reports/s",
        "acked",
        "stored",
        "errors",
        "p50 ms",
        "p99 ms",
        "max ms",
        "rss idle",
        "rss end",
        "rss peak",
        "host cpu"
    );
    for agents in levels {
        let r = rt.block_on(level(agents, secs))?;
        println!(
            "{:>7} {:>5} {:>10.0} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8} {:>7}Mi {:>7}Mi {:>7}Mi {:>8.0}%",
            r.agents,
            r.secs,
            r.acked as f64 / r.secs as f64,
            r.acked,
            r.stored,
            r.errors,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.rss_idle_kib / 1024,
            r.rss_end_kib / 1024,
            r.rss_peak_kib / 1024,
            r.cpu_percent,
        );
    }
    Ok(())
}
