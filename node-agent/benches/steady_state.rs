//! Steady-state cost of the node agent: resident memory and CPU of the
//! release binary while it reports to a harness host over mutual TLS,
//! with its metrics endpoint on and scraped every [`SCRAPE_EVERY`] by the
//! metrics-scraper identity, as mgmt's Prometheus does (more often than
//! its 30 s, so the endpoint's cost shows). `NODE_AGENT_BENCH_METRICS=0`
//! turns the endpoint off, for comparison.
//!
//! `cargo bench -p node-agent --bench steady_state` builds the agent users
//! get (the `node-dist` profile, [`support::shipped_agent`]) and runs it
//! once per interval (1 s, 10 s) for NODE_AGENT_BENCH_SECS seconds each
//! (default 60) after a warm-up. Debian's `prometheus-node-exporter`, if
//! installed, runs beside it for the same window as the peer to compare
//! with (its RSS and CPU at its default collectors).
//! Figures come from /proc/PID: VmRSS/VmHWM from `status`, utime+stime from
//! `stat` (CPU % is of one core).
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

mod support;

use test_support::node_harness as harness;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{HarnessHost, TestPki, TestResult, install_crypto, node_config};
use support::{Agent, cpu_seconds, exporter, status_kib};

const WARM_UP: Duration = Duration::from_secs(5);
const TARGET_RSS_KIB: u64 = 15 * 1024;
const TARGET_CPU_PERCENT: f64 = 0.5;
/// How often the benchmark scrapes the agent's metrics.
const SCRAPE_EVERY: Duration = Duration::from_secs(10);

struct Sample {
    interval: u32,
    seconds: f64,
    reports: usize,
    rss_kib: u64,
    hwm_kib: u64,
    cpu_percent: f64,
    scrapes: usize,
}

/// `NODE_AGENT_BENCH_METRICS=0` runs without the metrics endpoint, for
/// comparison (docs/benchmarks.md).
fn metrics_on() -> bool {
    std::env::var("NODE_AGENT_BENCH_METRICS").map_or(true, |v| v != "0")
}

/// A free loopback port for the agent's metrics endpoint (the agent is
/// another process, so the port must be named in its configuration).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Scrapes `addr` every [`SCRAPE_EVERY`] for `run_for`; the number of
/// successful scrapes (each must answer 200 with the agent's series).
async fn scrape_for(
    pki: &TestPki,
    addr: std::net::SocketAddr,
    run_for: Duration,
) -> TestResult<usize> {
    let scraper = pki.pki.metrics_scraper_identity()?;
    let ca = pki.pki.agent_ca_pem().to_owned();
    let deadline = Instant::now() + run_for;
    let mut ok = 0;
    while Instant::now() < deadline {
        let client = Some((scraper.cert_pem.as_str(), scraper.key_pem.expose()));
        match test_support::metrics::scrape(addr, &ca, client).await {
            Ok((200, body)) if body.contains("hostctl_node_reports_sent_total") => ok += 1,
            other => return Err(format!("scrape of {addr}: {other:?}").into()),
        }
        tokio::time::sleep(SCRAPE_EVERY.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
    Ok(ok)
}

async fn measure(
    bin: &std::path::Path,
    pki: &TestPki,
    host: &HarnessHost,
    interval: u32,
    run_for: Duration,
) -> TestResult<Sample> {
    let root = tempfile::tempdir()?;
    let node = format!("bench-{interval}s");
    let mut config = node_config(
        pki,
        &node,
        host.enrol_addr,
        host.host_addr,
        root.path(),
        Some(pki.issue_token(&node)?),
    );
    config.report_interval_seconds = interval;
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
    config.metrics_listen = metrics_on().then_some(metrics);
    let path = root.path().join("node-agent.yaml");
    std::fs::write(&path, config.to_yaml()?)?;
    let agent = Agent(
        Command::new(bin)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = agent.0.id();
    let of_node = |r: &[proto::v1::HealthReport]| r.iter().filter(|x| x.node == node).count();
    host.wait_for(Duration::from_secs(30), "the first report", |r| {
        of_node(r) > 0
    })
    .await?;
    tokio::time::sleep(WARM_UP).await;

    let (cpu0, t0, reports0) = (cpu_seconds(pid)?, Instant::now(), of_node(&host.stored()));
    let scrapes = if metrics_on() {
        scrape_for(pki, metrics, run_for).await?
    } else {
        tokio::time::sleep(run_for).await;
        0
    };
    let (cpu1, elapsed, reports1) = (cpu_seconds(pid)?, t0.elapsed(), of_node(&host.stored()));
    let seconds = elapsed.as_secs_f64();
    Ok(Sample {
        interval,
        seconds,
        reports: reports1 - reports0,
        rss_kib: status_kib(pid, "VmRSS:")?,
        hwm_kib: status_kib(pid, "VmHWM:")?,
        cpu_percent: (cpu1 - cpu0) / seconds * 100.0,
        scrapes,
    })
}

fn main() -> TestResult {
    install_crypto();
    let run_for = Duration::from_secs(
        std::env::var("NODE_AGENT_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let bin = support::shipped_agent()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let samples = runtime.block_on(async {
        let pki = TestPki::new()?;
        let host = HarnessHost::start(&pki).await?;
        let mut samples = Vec::new();
        for interval in [1, 10] {
            samples.push(measure(&bin, &pki, &host, interval, run_for).await?);
        }
        TestResult::Ok(samples)
    })?;
    let peer = exporter::measure(free_port()?, WARM_UP, run_for, SCRAPE_EVERY)?;

    println!("node-agent steady state ({})", bin.display());
    println!(
        "{:>9} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8}  target",
        "interval", "window", "reports", "scrapes", "VmRSS", "VmHWM", "CPU"
    );
    let peer_rss = peer.as_ref().map_or(u64::MAX, |p| p.rss_kib);
    for s in &samples {
        let meets = s.rss_kib <= TARGET_RSS_KIB.min(peer_rss)
            && (s.interval != 10 || s.cpu_percent < TARGET_CPU_PERCENT);
        println!(
            "{:>8}s {:>7.0}s {:>8} {:>8} {:>6.1} MiB {:>6.1} MiB {:>7.3}%  {}",
            s.interval,
            s.seconds,
            s.reports,
            s.scrapes,
            s.rss_kib as f64 / 1024.0,
            s.hwm_kib as f64 / 1024.0,
            s.cpu_percent,
            if meets { "met" } else { "MISSED" }
        );
    }
    match &peer {
        Some(p) => println!(
            "{:>9} {:>7.0}s {:>8} {:>8} {:>6.1} MiB {:>6.1} MiB {:>7.3}%  (peer: {}, default collectors)",
            "exporter",
            p.seconds,
            "-",
            p.scrapes,
            p.rss_kib as f64 / 1024.0,
            p.hwm_kib as f64 / 1024.0,
            p.cpu_percent,
            exporter::BIN
        ),
        None => println!(
            "peer: {} is not installed (apt-get install prometheus-node-exporter)",
            exporter::BIN
        ),
    }
    let metrics = if metrics_on() {
        format!("metrics endpoint on, scraped every {SCRAPE_EVERY:?}")
    } else {
        "metrics endpoint off".to_owned()
    };
    println!(
        "targets: VmRSS <= 15 MiB and <= the node exporter's; CPU < 0.5 % of one core at the 10 s interval ({metrics})"
    );
    Ok(())
}
