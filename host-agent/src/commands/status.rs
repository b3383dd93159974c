//! `hostctl status [--watch]`: per cluster and node, the VM state (from the
//! provider), whether the agent is connected, the last report's age and
//! figures, failing checks and the nearest certificate expiry.
//!
//! `-o json` is the stable interface (tests and scripts parse it):
//! ```text
//! { "daemon":   { "version", "pid", "host_endpoint", "enrol_endpoint", "now" },
//!   "clusters": [ { "name", "nodes": [ {
//!       "name", "cluster", "vm_state" (string|null: null when no provider),
//!       "connected" (bool), "stale" (bool: no report for 3 intervals),
//!       "last_report_at" (RFC 3339|null), "last_report_age_seconds" (number|null),
//!       "cpu_percent" (number|null), "memory_used_bytes", "memory_total_bytes" (int|null),
//!       "disk_root" ({ "total_bytes", "available_bytes" }|null),
//!       "failing_checks" ([string]), "nearest_cert_expiry" (RFC 3339|null),
//!       "nearest_cert_path" (string|null), "reports_stored", "reports_dropped" (int),
//!       "agent_version" (string|null), "addresses" ([string]) } ] } ] }
//! ```
//! Clusters are sorted by name; a node that reported but is not in the
//! daemon's topology is listed under the cluster name `""`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use proto::v1::{CheckStatus, NodeStatus, StatusResponse};
use serde::Serialize;

use crate::cli::{Context, coded};
use crate::daemon::ensure_running;
use crate::exit::Exit;
use crate::output::{OutputFormat, Table, render};

/// How often `--watch` refreshes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Refresh every two seconds until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

#[derive(Debug, Serialize)]
pub struct StatusView {
    pub daemon: DaemonView,
    pub clusters: Vec<ClusterView>,
}

#[derive(Debug, Serialize)]
pub struct DaemonView {
    pub version: String,
    pub pid: u32,
    pub host_endpoint: String,
    pub enrol_endpoint: String,
    pub now: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ClusterView {
    pub name: String,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Serialize)]
pub struct NodeView {
    pub name: String,
    pub cluster: String,
    pub vm_state: Option<String>,
    pub connected: bool,
    pub stale: bool,
    pub last_report_at: Option<String>,
    pub last_report_age_seconds: Option<f64>,
    pub cpu_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub disk_root: Option<DiskView>,
    pub failing_checks: Vec<String>,
    pub nearest_cert_expiry: Option<String>,
    pub nearest_cert_path: Option<String>,
    pub reports_stored: u64,
    pub reports_dropped: u64,
    pub agent_version: Option<String>,
    pub addresses: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DiskView {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

fn node_view(n: &NodeStatus, vm_states: &BTreeMap<String, String>, now: SystemTime) -> NodeView {
    let meta = n.meta.clone().unwrap_or_default();
    let report = n.last_report.as_ref();
    let system = report.and_then(|r| r.system.as_ref());
    let received = n.last_report_received_at;
    let age = received
        .as_ref()
        .and_then(proto::system_time)
        .map(|t| now.duration_since(t).unwrap_or_default().as_secs_f64());
    let disk_root = system
        .and_then(|s| s.disks.iter().find(|d| d.path == "/" && d.present))
        .map(|d| DiskView {
            total_bytes: d.total_bytes,
            available_bytes: d.available_bytes,
        });
    let failing_checks = report
        .map(|r| {
            r.checks
                .iter()
                .filter(|c| c.status == CheckStatus::Fail as i32)
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default();
    NodeView {
        vm_state: vm_states.get(&meta.node).cloned(),
        name: meta.node,
        cluster: meta.cluster,
        connected: n.connected,
        stale: n.stale,
        last_report_at: received.map(|t| t.to_string()),
        last_report_age_seconds: age,
        cpu_percent: system.map(|s| s.cpu_percent),
        memory_used_bytes: system.map(|s| s.memory_used_bytes),
        memory_total_bytes: system.map(|s| s.memory_total_bytes),
        disk_root,
        failing_checks,
        nearest_cert_expiry: report
            .and_then(|r| r.nearest_cert_expiry)
            .map(|t| t.to_string()),
        nearest_cert_path: report
            .map(|r| r.nearest_cert_path.clone())
            .filter(|p| !p.is_empty()),
        reports_stored: n.reports_stored,
        reports_dropped: n.reports_dropped,
        agent_version: report
            .map(|r| r.agent_version.clone())
            .filter(|v| !v.is_empty()),
        addresses: n.addresses.clone(),
    }
}

/// Groups the daemon's answer by cluster, adding the provider's VM states.
pub fn view(
    status: &StatusResponse,
    vm_states: &BTreeMap<String, String>,
    now: SystemTime,
) -> StatusView {
    let mut clusters: BTreeMap<String, Vec<NodeView>> = BTreeMap::new();
    for n in &status.nodes {
        let v = node_view(n, vm_states, now);
        clusters.entry(v.cluster.clone()).or_default().push(v);
    }
    StatusView {
        daemon: DaemonView {
            version: status.daemon_version.clone(),
            pid: status.daemon_pid,
            host_endpoint: status.host_endpoint.clone(),
            enrol_endpoint: status.enrol_endpoint.clone(),
            now: status.now.map(|t| t.to_string()),
        },
        clusters: clusters
            .into_iter()
            .map(|(name, nodes)| ClusterView { name, nodes })
            .collect(),
    }
}

fn dash<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".to_owned())
}

fn age(secs: f64) -> String {
    match secs {
        s if s < 120.0 => format!("{s:.0}s"),
        s if s < 7200.0 => format!("{:.0}m", s / 60.0),
        s if s < 172_800.0 => format!("{:.0}h", s / 3600.0),
        s => format!("{:.0}d", s / 86_400.0),
    }
}

fn gib(bytes: u64) -> f64 {
    // Precision loss is irrelevant for a one-decimal display value.
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    b / f64::from(1u32 << 30)
}

fn agent_cell(n: &NodeView) -> String {
    let base = if n.connected {
        "connected"
    } else {
        "disconnected"
    };
    match (n.last_report_at.is_some(), n.stale) {
        (false, _) => format!("{base},no-reports"),
        (true, true) => format!("{base},stale"),
        (true, false) => base.to_owned(),
    }
}

/// The human table: one row per node.
pub fn table(v: &StatusView) -> Table {
    let mut t = Table::new([
        "CLUSTER",
        "NODE",
        "VM",
        "AGENT",
        "LAST",
        "CPU",
        "MEMORY",
        "DISK /",
        "FAILING",
        "CERT EXPIRY",
    ]);
    for c in &v.clusters {
        for n in &c.nodes {
            let memory = match (n.memory_used_bytes, n.memory_total_bytes) {
                (Some(u), Some(t)) => format!("{:.1}/{:.1}Gi", gib(u), gib(t)),
                _ => "-".to_owned(),
            };
            let disk = dash(n.disk_root.as_ref(), |d| {
                let used = d.total_bytes.saturating_sub(d.available_bytes);
                let pct = used
                    .saturating_mul(100)
                    .checked_div(d.total_bytes)
                    .unwrap_or(0);
                format!("{pct}% of {:.0}Gi", gib(d.total_bytes))
            });
            let failing = if n.failing_checks.is_empty() {
                "-".to_owned()
            } else {
                n.failing_checks.join(",")
            };
            t.row([
                if c.name.is_empty() {
                    "-".to_owned()
                } else {
                    c.name.clone()
                },
                n.name.clone(),
                n.vm_state.clone().unwrap_or_else(|| "-".to_owned()),
                agent_cell(n),
                dash(n.last_report_age_seconds, age),
                dash(n.cpu_percent, |p| format!("{p:.0}%")),
                memory,
                disk,
                failing,
                n.nearest_cert_expiry
                    .as_deref()
                    .map(|e| e.get(..10).unwrap_or(e).to_owned())
                    .unwrap_or_else(|| "-".to_owned()),
            ]);
        }
    }
    t
}

/// VM states by name from the provider recorded for this home; empty when
/// none is recorded or it cannot answer (the column then shows `-`).
async fn vm_states(ctx: &Context) -> BTreeMap<String, String> {
    let Ok(provider) = crate::provider::for_home(ctx.home.root()) else {
        return BTreeMap::new();
    };
    match provider.list().await {
        Ok(vms) => vms
            .into_iter()
            .map(|vm| (vm.name, vm.state.to_string()))
            .collect(),
        Err(e) => {
            tracing::debug!("provider list failed: {e}");
            BTreeMap::new()
        }
    }
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    crate::cli::block_on(async {
        let mut client = ensure_running(ctx, ctx.topology.as_deref())
            .await
            .map_err(|e| coded(Exit::Precondition, e))?;
        loop {
            let status = client.status().await?;
            let v = view(&status, &vm_states(ctx).await, SystemTime::now());
            let text = render(ctx.output, &v, || table(&v))?;
            if args.watch && ctx.output == OutputFormat::Table {
                print!("\x1b[2J\x1b[H");
            }
            print!("{text}");
            if !args.watch {
                return Ok(Exit::Ok);
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
    })?
}
