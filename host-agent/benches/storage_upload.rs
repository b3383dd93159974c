//! Snapshot upload to the host's object store (issue 20): hostctl's
//! streaming, digest-signed `PUT` against `curl --upload-file` of the same
//! file to the same real Garage server, as a ratio (median of alternating
//! rounds), and the upload's memory at two file sizes (peak RSS growth of
//! this process, which should not grow with the file).
//!
//! `cargo bench -p host-agent --bench storage_upload`
//! Environment: `HOSTCTL_TEST_GARAGE` (the server; default `garage` on
//! `PATH`), `UPLOAD_BENCH_MB` (sizes, default `64,256`),
//! `UPLOAD_BENCH_ROUNDS` (default 3).
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks write fixtures and run peers"
)]

use host_agent::storage::config::Listeners;
use host_agent::storage::layout::Layout;
use host_agent::storage::offsite;
use host_agent::storage::plan::{ETCD_BUCKET, HOST_KEY};
use host_agent::storage::service::Storage;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Peak resident set of this process (`VmHWM`), KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn write_random(path: &Path, mib: usize) -> Result<(), BoxError> {
    use std::io::{Read, Write};
    let mut src = std::fs::File::open("/dev/urandom")?;
    let mut out = std::fs::File::create(path)?;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        src.read_exact(&mut buf)?;
        out.write_all(&buf)?;
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn curl_upload(storage: &Storage, file: &Path, key: &str) -> Result<Duration, BoxError> {
    let keys = host_agent::storage::secrets::Keys::load(&storage.layout.keys())?;
    let k = keys.get(HOST_KEY)?;
    let url = format!("{}/{ETCD_BUCKET}/{key}", storage.s3_url());
    let start = Instant::now();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-f", "-o", "/dev/null", "--upload-file"])
        .arg(file)
        .args(["--aws-sigv4", "aws:amz:garage:s3", "--user"])
        .arg(format!("{}:{}", k.access_key_id, k.secret_access_key))
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", &url])
        .output()?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!("curl: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(took)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let garage = std::env::var_os("HOSTCTL_TEST_GARAGE").map(PathBuf::from);
    let home = tempfile::tempdir()?;
    let loopback = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    let storage = Storage {
        layout: Layout::new(home.path()),
        listeners: Listeners {
            s3: loopback(free_port()),
            admin: loopback(free_port()),
            rpc: loopback(free_port()),
        },
        clusters: vec!["app1".into()],
        ready_within: Duration::from_secs(180),
        garage,
        docker: None,
    };
    storage.up().await?;
    let client = storage.host_client()?;
    let rounds: usize = env_or("UPLOAD_BENCH_ROUNDS", "3").parse()?;
    let sizes: Vec<usize> = env_or("UPLOAD_BENCH_MB", "64,256")
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "storage upload bench: {rounds} rounds, load {}",
        load.trim()
    );
    println!("size_mib  hostctl_mib_s  curl_mib_s  ratio  rss_growth_kib");
    let result = async {
        for mib in sizes {
            let file = home.path().join(format!("snap-{mib}.db"));
            write_random(&file, mib)?;
            let (_, sha256) = offsite::digest_file(&file).await?;
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            let before = peak_rss_kib();
            for round in 0..rounds {
                let start = Instant::now();
                client
                    .put_file(ETCD_BUCKET, &format!("ours/{mib}-{round}"), &file, &sha256)
                    .await?;
                ours.push(start.elapsed());
                theirs.push(curl_upload(
                    &storage,
                    &file,
                    &format!("curl/{mib}-{round}"),
                )?);
            }
            let growth = peak_rss_kib().saturating_sub(before);
            let rate = |d: Duration| mib as f64 / d.as_secs_f64();
            let (o, t) = (median(ours), median(theirs));
            println!(
                "{mib:>8}  {:>13.1}  {:>10.1}  {:>5.2}  {growth:>14}",
                rate(o),
                rate(t),
                t.as_secs_f64() / o.as_secs_f64()
            );
            std::fs::remove_file(&file)?;
        }
        Ok::<_, BoxError>(())
    }
    .await;
    storage.down(true).await?;
    result
}
