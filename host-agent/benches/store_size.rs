//! Report store: disk bytes per report, and how long opening takes as the
//! store grows — after a clean close and after a crash (issue 13, item 8:
//! a 1.36 GB store took 8–19 s to open after a SIGKILL, near the CLI's
//! 20 s start timeout).
//!
//! A crash is simulated by copying the file while the store is open: every
//! acknowledged report is in it, and it is marked as in use, exactly as a
//! SIGKILL leaves it. For comparison, the same copy is also opened with a
//! full integrity check and repair (`set_check_integrity_on_open`), the
//! walk of the whole file that every open after a crash did before the
//! store recorded its allocator state on each commit (quick repair).
//!
//! `cargo bench -p host-agent --bench store_size`
//! Environment: `STORE_BENCH_MB` (store sizes, default `10,100,400`),
//! `STORE_BENCH_REPORT_BYTES` (report size, default 8192).
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use host_agent::store::{Limits, Store};
use proto::v1::{Check, HealthReport};

type BoxError = Box<dyn std::error::Error>;

const NODES: usize = 8;
/// Reports per node submitted together while filling (one group commit).
const PER_NODE: usize = 32;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(node: usize, seq: u64, bytes: usize) -> HealthReport {
    HealthReport {
        agent_instance: "bench".into(),
        seq,
        taken_at: Some(proto::timestamp(SystemTime::now())),
        node: format!("node-{node}"),
        checks: vec![Check {
            name: "filler".into(),
            message: "x".repeat(bytes),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Unbounded per node, so that the store reaches the size measured.
fn limits() -> Limits {
    Limits {
        history: u64::MAX,
        node_bytes: u64::MAX,
        ..Limits::with_history(1)
    }
}

/// Fills `store` until its file reaches `target` bytes; returns the
/// number of reports stored.
async fn fill(
    store: &Store,
    path: &Path,
    target: u64,
    report_bytes: usize,
) -> Result<u64, BoxError> {
    let mut seq = 0u64;
    while file_len(path) < target {
        let now = SystemTime::now();
        // One batch: the next PER_NODE reports of every node.
        let pending: Vec<_> = (0..PER_NODE * NODES)
            .map(|i| {
                let (node, n) = (i % NODES, (i / NODES) as u64);
                let r = report(node, seq + 1 + n, report_bytes);
                store.submit(&format!("node-{node}"), r, now)
            })
            .collect();
        for p in pending {
            p.await??;
        }
        seq += PER_NODE as u64;
    }
    Ok(seq * NODES as u64)
}

/// Median latency of one report per commit (no group commit to share
/// the fsyncs): what quick repair costs each commit.
async fn commit_latency(store: &Store, report_bytes: usize) -> Result<Duration, BoxError> {
    let mut times = Vec::new();
    for seq in 1..=101u64 {
        let now = SystemTime::now();
        let started = Instant::now();
        store
            .ingest("latency", report(0, seq, report_bytes), now)
            .await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Copies `from` (an open store) to `to` and syncs the copy, as every
/// commit had synced the original: the open measured must not pay for
/// flushing a file that was just written.
fn crash_copy(from: &Path, to: &Path) -> Result<(), BoxError> {
    std::fs::copy(from, to)?;
    std::fs::File::open(to)?.sync_all()?;
    Ok(())
}

async fn timed_open(path: &Path) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let store = Store::open_with_limits(path, limits())?;
    let took = started.elapsed();
    store.close().await;
    Ok(took)
}

async fn measure(target_mb: u64, report_bytes: usize) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.redb");
    let crashed = dir.path().join("crashed.redb");
    let store = Store::open_with_limits(&path, limits())?;
    let started = Instant::now();
    let reports = fill(&store, &path, target_mb * 1_000_000, report_bytes).await?;
    let fill_time = started.elapsed();
    let latency = commit_latency(&store, report_bytes).await?;
    crash_copy(&path, &crashed)?;
    store.close().await;
    drop(store);
    let len = file_len(&path);

    let clean = timed_open(&path).await?;
    let after_crash = timed_open(&crashed).await?;
    // The copy is clean again now; crash it once more for the full repair.
    let store = Store::open_with_limits(&crashed, limits())?;
    let recrashed = dir.path().join("recrashed.redb");
    crash_copy(&crashed, &recrashed)?;
    store.close().await;
    let started = Instant::now();
    let db = redb::Builder::new()
        .set_check_integrity_on_open(true)
        .create(&recrashed)?;
    let full_repair = started.elapsed();
    drop(db);

    println!(
        "{:>8.1} MB  {:>7} reports  {:>6.0} B/report on disk ({} B encoded)  fill {:>5.1} s  \
         commit p50 {:>6.2} ms  open: clean {:>7.1} ms, after crash {:>7.1} ms, \
         full repair {:>8.1} ms",
        mb(len),
        reports,
        len as f64 / reports as f64,
        prost::Message::encoded_len(&report(0, 1, report_bytes)),
        fill_time.as_secs_f64(),
        ms(latency),
        ms(clean),
        ms(after_crash),
        ms(full_repair),
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let sizes: Vec<u64> = std::env::var("STORE_BENCH_MB")
        .unwrap_or_else(|_| "10,100,400".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let report_bytes = env_or("STORE_BENCH_REPORT_BYTES", 8192usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for size in sizes {
        rt.block_on(measure(size, report_bytes))?;
    }
    Ok(())
}
