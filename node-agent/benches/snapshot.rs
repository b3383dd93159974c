//! etcd snapshot throughput through the node agent against `etcdctl
//! snapshot save`, in the same run on the same etcd, and the agent's peak
//! memory at two database sizes (issue 23: ratio >= 0.9 at 100 and 400 MiB
//! with the agent users get, agent memory independent of the size).
//!
//! ```text
//! cargo bench -p node-agent --bench snapshot                    # 100, 400 MiB
//! NODE_AGENT_BENCH_MIB=1600 cargo bench -p node-agent --bench snapshot  # 400, 1600
//! NODE_AGENT_BENCH_MIB=40 NODE_AGENT_BENCH_RUNS=1 cargo bench -p node-agent --bench snapshot
//! ```
//!
//! One real etcd 3.4 on loopback with TLS and client-certificate auth is
//! filled to a quarter of `NODE_AGENT_BENCH_MIB` (default 400), measured,
//! then to the full size, measured again. At each size a fresh process of
//! the shipped agent (the `node-dist` build, [`support::shipped_agent`],
//! enrolled against the in-process
//! harness host, schedule off) serves `Etcd.Snapshot`; the bench pulls it as
//! the host does: mutual TLS with an admin certificate, the trailing hash
//! checked while streaming (`TrailerHasher`), written through a 256 KiB
//! buffer, fsynced, checked against the trailer. `etcdctl snapshot save`
//! writes, fsyncs and renames its file. The runs alternate and the median
//! of `NODE_AGENT_BENCH_RUNS` (default 3) is reported; VmHWM is the agent's
//! peak resident memory over all its runs at that size. CPU columns are
//! seconds of CPU per GiB moved, summed over the runs: etcd's own while
//! serving each path, the agent's, and the receiving side's (etcdctl's, or
//! this process's for the agent path).
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

mod support;

use test_support::etcd as etcd_process;
use test_support::node_harness as harness;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_process::{Etcd, EtcdPki, EtcdSpec, free_port, mint_etcd_pki, snapshot_status};
use harness::{HarnessHost, TestPki, TestResult, install_crypto, node_config};
use proto::snapshot::TrailerHasher;
use proto::v1::etcd_client::EtcdClient;
use proto::v1::{EtcdSnapshotRequest, snapshot_chunk::Kind};
use support::{Agent, cpu_seconds, status_kib};
use tokio::io::{AsyncWriteExt, BufWriter};
use tonic::transport::{ClientTlsConfig, Endpoint};

/// Value size of the filler keys: large values fill the database quickly.
const VALUE_BYTES: usize = 100 * 1024;
/// Puts in flight while filling.
const FILL_CONCURRENCY: usize = 8;
const TARGET_RATIO: f64 = 0.9;
/// The agent's peak memory may differ by this much between the sizes.
const FLAT_KIB: u64 = 1024;
const MIB: f64 = 1024.0 * 1024.0;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One measured transfer.
#[derive(Debug, Clone, Copy)]
struct Run {
    bytes: u64,
    seconds: f64,
}

/// CPU seconds spent on one path over all its runs, and the bytes moved.
#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    etcd: f64,
    agent: f64,
    receiver: f64,
    bytes: u64,
}

impl Cpu {
    fn per_gib(&self, seconds: f64) -> f64 {
        seconds / (self.bytes as f64 / (1024.0 * MIB))
    }

    fn line(&self) -> String {
        format!(
            "etcd {:.2}, agent {:.2}, receiver {:.2} s/GiB",
            self.per_gib(self.etcd),
            self.per_gib(self.agent),
            self.per_gib(self.receiver)
        )
    }
}

/// CPU used by this process and its waited-for children (etcdctl), in s.
fn own_and_children_cpu() -> TestResult<(f64, f64)> {
    let [utime, stime, cutime, cstime] = support::stat_ticks("/proc/self/stat")?;
    let tick = support::clock_ticks_per_second();
    Ok((
        (utime + stime) as f64 / tick,
        (cutime + cstime) as f64 / tick,
    ))
}

impl Run {
    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / MIB / self.seconds
    }
}

/// The median by duration (runs at one size have the same byte count).
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    runs[runs.len() / 2]
}

/// Puts 100 KiB values until `mib` MiB of values are stored in total
/// (counting earlier calls: keys are numbered on from `next_key`).
async fn fill(pki: &EtcdPki, endpoint: &str, mib: usize, next_key: &mut usize) -> TestResult {
    let tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(std::fs::read(pki.ca())?))
        .identity(etcd_client::Identity::from_pem(
            std::fs::read(pki.client_cert())?,
            std::fs::read(pki.client_key())?,
        ));
    let client = etcd_client::Client::connect(
        [endpoint],
        Some(etcd_client::ConnectOptions::new().with_tls(tls)),
    )
    .await?;
    let end = (mib << 20).div_ceil(VALUE_BYTES);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..FILL_CONCURRENCY {
        let mut c = client.clone();
        let first = *next_key + worker;
        tasks.spawn(async move {
            // Distinct bytes per key so no layer can share pages.
            let mut value = vec![0u8; VALUE_BYTES];
            for k in (first..end).step_by(FILL_CONCURRENCY) {
                value[..8].copy_from_slice(&(k as u64).to_le_bytes());
                c.put(format!("/bench/{k:08}"), value.clone(), None).await?;
            }
            Ok::<_, etcd_client::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    *next_key = end.max(*next_key);
    Ok(())
}

/// `etcdctl snapshot save` into `file`.
fn etcdctl_save(etcd: &Etcd, file: &Path) -> TestResult<Run> {
    let _ = std::fs::remove_file(file);
    let start = Instant::now();
    etcd.ctl(&["snapshot", "save", &file.display().to_string()])?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(Run {
        bytes: std::fs::metadata(file)?.len(),
        seconds,
    })
}

/// Pulls a snapshot from the agent into `file` the way the host stores
/// one: verified while streaming, buffered, fsynced, checked at the end.
async fn agent_pull(
    client: &mut EtcdClient<tonic::transport::Channel>,
    file: &Path,
) -> TestResult<Run> {
    let start = Instant::now();
    let mut stream = client.snapshot(EtcdSnapshotRequest {}).await?.into_inner();
    let mut out = BufWriter::with_capacity(256 * 1024, tokio::fs::File::create(file).await?);
    let mut hasher = TrailerHasher::new();
    let mut trailer = None;
    while let Some(chunk) = stream.message().await? {
        match chunk.kind {
            Some(Kind::Meta(_)) => {}
            Some(Kind::Data(d)) => {
                hasher.update(&d);
                out.write_all(&d).await?;
            }
            Some(Kind::Trailer(t)) => trailer = Some(t),
            Some(Kind::Error(e)) => return Err(e.message.into()),
            None => {}
        }
    }
    let trailer = trailer.ok_or("the agent sent no trailer")?;
    hasher.finish()?.matches(&trailer.sha256, trailer.size)?;
    out.flush().await?;
    out.get_ref().sync_all().await?;
    Ok(Run {
        bytes: trailer.size,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A fresh agent process for `root` (whose etcd PKI is kubeadm-shaped),
/// its `Etcd` client, once it has reported.
async fn start_agent(
    bin: &Path,
    pki: &TestPki,
    host: &HarnessHost,
    root: &Path,
    etcd_endpoint: &str,
) -> TestResult<(Agent, EtcdClient<tonic::transport::Channel>)> {
    let node = "bench-cp";
    let listen = free_port()?;
    let mut config = node_config(
        pki,
        node,
        host.enrol_addr,
        host.host_addr,
        root,
        Some(pki.issue_token(node)?),
    );
    config.control_plane = true;
    config.listen = ([127, 0, 0, 1], listen).into();
    config.report_interval_seconds = 10;
    config.etcd.endpoint = etcd_endpoint.to_owned();
    config.etcd.snapshot.interval_seconds = 0;
    let path = root.join("node-agent.yaml");
    std::fs::write(&path, config.to_yaml()?)?;
    let reported = host.stored().iter().filter(|r| r.node == node).count();
    let agent = Agent(
        Command::new(bin)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    host.wait_for(Duration::from_secs(30), "the agent's first report", |r| {
        r.iter().filter(|x| x.node == node).count() > reported
    })
    .await?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(pki.ca())
        .identity(pki.admin_identity())
        .domain_name("127.0.0.1");
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{listen}"))?
        .tls_config(tls)?
        .connect()
        .await?;
    Ok((agent, EtcdClient::new(channel)))
}

/// The figures at one database size.
struct Row {
    etcdctl: Run,
    agent: Run,
    agent_hwm_kib: u64,
    ctl_cpu: Cpu,
    agent_cpu: Cpu,
}

async fn measure(
    bin: &Path,
    pki: &TestPki,
    host: &HarnessHost,
    etcd: &Etcd,
    root: &Path,
    runs: usize,
) -> TestResult<Row> {
    let (agent, mut client) = start_agent(bin, pki, host, root, &etcd.endpoint()).await?;
    let (mut ctl, mut ours) = (Vec::new(), Vec::new());
    let (mut ctl_cpu, mut agent_cpu) = (Cpu::default(), Cpu::default());
    let (ctl_file, agent_file) = (root.join("etcdctl.db"), root.join("agent.db"));
    let (etcd_pid, agent_pid) = (etcd.pid(), agent.0.id());
    for _ in 0..runs {
        let (e0, (_, c0)) = (cpu_seconds(etcd_pid)?, own_and_children_cpu()?);
        let run = etcdctl_save(etcd, &ctl_file)?;
        let (e1, (_, c1)) = (cpu_seconds(etcd_pid)?, own_and_children_cpu()?);
        ctl_cpu.etcd += e1 - e0;
        ctl_cpu.receiver += c1 - c0;
        ctl_cpu.bytes += run.bytes;
        ctl.push(run);

        let (e0, a0, (s0, _)) = (
            cpu_seconds(etcd_pid)?,
            cpu_seconds(agent_pid)?,
            own_and_children_cpu()?,
        );
        let run = agent_pull(&mut client, &agent_file).await?;
        let (e1, a1, (s1, _)) = (
            cpu_seconds(etcd_pid)?,
            cpu_seconds(agent_pid)?,
            own_and_children_cpu()?,
        );
        agent_cpu.etcd += e1 - e0;
        agent_cpu.agent += a1 - a0;
        agent_cpu.receiver += s1 - s0;
        agent_cpu.bytes += run.bytes;
        ours.push(run);
    }
    // What the agent delivered is a snapshot etcdctl accepts, of the
    // database as it is (nothing writes during the runs).
    let status = snapshot_status(&agent_file)?;
    let revision = etcd.revision()?;
    if status["revision"].as_i64() != Some(revision) {
        return Err(format!("agent snapshot {status} is not at revision {revision}").into());
    }
    let agent_hwm_kib = status_kib(agent_pid, "VmHWM:")?;
    drop(agent);
    Ok(Row {
        etcdctl: median(ctl),
        agent: median(ours),
        agent_hwm_kib,
        ctl_cpu,
        agent_cpu,
    })
}

fn main() -> TestResult {
    install_crypto();
    let full_mib = env_or("NODE_AGENT_BENCH_MIB", 400).max(16);
    let runs = env_or("NODE_AGENT_BENCH_RUNS", 3).max(1);
    let sizes = [full_mib / 4, full_mib];
    let bin = support::shipped_agent()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let rows = runtime.block_on(async {
        let pki = TestPki::new()?;
        let host = HarnessHost::start(&pki).await?;
        let root = tempfile::tempdir()?;
        let etcd_pki = mint_etcd_pki(root.path())?;
        let spec = EtcdSpec::loopback(
            "bench",
            free_port()?,
            free_port()?,
            root.path().join("etcd"),
        );
        let etcd = Etcd::start(&etcd_pki, &spec)?;
        let mut next_key = 0;
        let mut rows = Vec::new();
        for mib in sizes {
            let start = Instant::now();
            fill(&etcd_pki, &etcd.endpoint(), mib, &mut next_key).await?;
            eprintln!(
                "filled to {mib} MiB in {:.1} s",
                start.elapsed().as_secs_f64()
            );
            rows.push(measure(&bin, &pki, &host, &etcd, root.path(), runs).await?);
        }
        TestResult::Ok(rows)
    })?;

    println!(
        "etcd snapshot: etcdctl snapshot save vs node-agent Etcd.Snapshot ({}), median of {runs} alternating rounds",
        bin.display()
    );
    println!(
        "{:>12} {:>9} {:>9} {:>9} {:>9} {:>7} {:>11}",
        "bytes", "ctl s", "ctl MiB/s", "agent s", "agt MiB/s", "ratio", "agent VmHWM"
    );
    // The target holds at every size.
    let mut met = true;
    for r in &rows {
        let ratio = r.agent.mib_per_s() / r.etcdctl.mib_per_s();
        met &= ratio >= TARGET_RATIO;
        println!(
            "{:>12} {:>9.2} {:>9.1} {:>9.2} {:>9.1} {:>7.2} {:>7.1} MiB",
            r.agent.bytes,
            r.etcdctl.seconds,
            r.etcdctl.mib_per_s(),
            r.agent.seconds,
            r.agent.mib_per_s(),
            ratio,
            r.agent_hwm_kib as f64 / 1024.0
        );
    }
    println!("CPU per GiB moved (all runs):");
    for (mib, r) in sizes.iter().zip(&rows) {
        println!("{mib:>6} MiB  etcdctl path: {}", r.ctl_cpu.line());
        println!("{mib:>6} MiB  agent path:   {}", r.agent_cpu.line());
    }
    let hwm: Vec<u64> = rows.iter().map(|r| r.agent_hwm_kib).collect();
    let spread = hwm.iter().max().unwrap_or(&0) - hwm.iter().min().unwrap_or(&0);
    let shown: Vec<String> = hwm.iter().map(ToString::to_string).collect();
    println!(
        "throughput ratio >= {TARGET_RATIO} at {sizes:?} MiB: {}; agent peak memory {} KiB ({}: spread {spread} KiB, target within {FLAT_KIB} KiB)",
        if met { "met" } else { "MISSED" },
        shown.join(" -> "),
        if spread <= FLAT_KIB {
            "flat"
        } else {
            "NOT flat"
        },
    );
    Ok(())
}
