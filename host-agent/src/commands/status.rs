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
//!       "agent_version" (string|null), "addresses" ([string]),
//!       "enrolment_refused" ({ "at" (RFC 3339), "reason", "peer", "current"
//!         (bool: after the last report) }|null: the last refusal since the
//!         daemon started),
//!       "clock_skew_seconds" (int|null: the node's clock minus the host's,
//!         set only beyond the 30 s warning threshold), "clock_warning"
//!         (string|null), "agent_cert_not_after" (RFC 3339|null: the
//!         agent-plane certificate the node last authenticated with),
//!         "agent_cert_warning" (string|null: expiring within 30 days without
//!         renewing, or revoked) } ],
//!     "snapshot": { "latest" (file name|null), "taken_at" (RFC 3339|null),
//!       "age_seconds" (int|null), "rpo_seconds" (int: 86400),
//!       "rpo_breach" (bool) }|null } ] },
//!   "observability": { "k8sgpt": { "on" (bool), "backend"?, "model"? },
//!     "clusters": [ { "cluster", "metrics"?: { "ok": { "backlog_seconds"
//!       (number|null), "failed_samples", "wal_keeps_seconds" } } | { "error" },
//!       "logs"?: { "ok": { "shippers", "answering", "sent_entries",
//!       "dropped_entries", "batch_retries" } } | { "error" },
//!       "newest_sample_age_seconds"?: { "ok": int|null } | { "error" } } ] }
//!     (absent without mgmt in the topology; see [`observability`]),
//!   "policy": { "clusters": [ { "cluster", "kyverno": "never" (mgmt: C4)
//!     | "not_installed" | { "live": { "admission" (bool), "enforced"
//!     ([string]), "audited" ([string]), "audit_violations" (int) } }
//!     | { "error": string } } ] }
//!     (absent before `up` built a cluster; see [`policy`]),
//!   "drills"?: [ { "drill", "outcome": "passed"|"failed"|"not-installed",
//!     "finished_at" (RFC 3339), "proves" ([string]) } ]
//!     (the last result of each drill run here; see [`drills`]) }
//! ```
//! Clusters are sorted by name; a node that reported but is not in the
//! daemon's topology is listed under the cluster name `""` (its `snapshot`
//! is `null`). `snapshot` (added with etcd snapshots) judges the newest
//! snapshot in `$HOSTCTL_HOME/snapshots/<cluster>/` against the RPO
//! ([`crate::snapshots::rpo`]): a breach when it is older than 24 h, or when
//! there is none although the cluster's control plane has reported.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use proto::v1::{CheckStatus, NodeStatus, StatusResponse};
use serde::Serialize;

use crate::cli::{Context, coded};
use crate::cluster_api::ClusterHealth;
use crate::daemon::ControlClient;
use crate::daemon::config::socket_path;
use crate::exit::Exit;
use crate::output::{OutputFormat, Table, render};
use crate::snapshots::SnapshotStore;
use crate::snapshots::rpo::{self, SnapshotHealth};

mod api;
mod backups;
pub mod drills;
pub mod mirrors;
pub mod observability;
pub mod policy;
pub mod vault;
use api::api_cell;
pub use api::with_api_health;

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
    /// The nodes share this machine (local provider): their CPU and memory
    /// figures are the host's, not a node's own.
    pub host_wide_figures: bool,
    /// mgmt's Vault, once this home bootstrapped one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault: Option<vault::VaultView>,
    /// Shipping per cluster and k8sgpt, once the topology has mgmt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observability: Option<observability::ObservabilityView>,
    /// Kyverno per cluster (C4), once `up` has built a cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<policy::PolicyView>,
    /// The last result of each failure drill run in this home.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<drills::DrillLine>,
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
    /// Filled by [`with_snapshots`]; `None` for nodes outside the topology.
    pub snapshot: Option<SnapshotHealth>,
    /// Filled by [`with_api_health`]: the API server as seen from the host
    /// and node readiness; `None` until the control plane reports an
    /// initialised API server (nothing to probe before kubeadm init).
    pub api: Option<ClusterHealth>,
}

/// The check only control-plane agents run: its presence in a node's last
/// report says the cluster's control plane (and so etcd) exists.
const CONTROL_PLANE_CHECK: &str = proto::contract::checks::ETCD_HEALTH;

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
    pub enrolment_refused: Option<RefusalView>,
    /// Beyond the warning threshold only (the daemon sends 0 within it).
    pub clock_skew_seconds: Option<i64>,
    pub clock_warning: Option<String>,
    pub agent_cert_not_after: Option<String>,
    pub agent_cert_warning: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RefusalView {
    pub at: String,
    pub reason: String,
    pub peer: String,
    /// Newer than the node's last report: what the node is stuck on now.
    pub current: bool,
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
    let received_at = received.as_ref().and_then(proto::system_time);
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
        enrolment_refused: n.last_enrolment_refusal.as_ref().map(|r| RefusalView {
            at: r.at.map(|t| t.to_string()).unwrap_or_default(),
            reason: r.reason.clone(),
            peer: r.peer.clone(),
            current: match (r.at.as_ref().and_then(proto::system_time), received_at) {
                (Some(refused), Some(reported)) => refused > reported,
                (_, None) => true,
                (None, Some(_)) => false,
            },
        }),
        clock_skew_seconds: (n.clock_skew_seconds != 0).then_some(n.clock_skew_seconds),
        clock_warning: Some(n.clock_warning.clone()).filter(|w| !w.is_empty()),
        agent_cert_not_after: n.agent_cert_not_after.map(|t| t.to_string()),
        agent_cert_warning: Some(n.agent_cert_warning.clone()).filter(|w| !w.is_empty()),
    }
}

/// One line per warning, for under the table: a node whose clock is off
/// (the skew does not make a node stale — staleness uses the host's clock
/// — but its certificates and logs need its clock to be right), and a node
/// whose agent certificate is revoked or about to expire unrenewed.
pub fn node_warnings(v: &StatusView) -> Vec<String> {
    v.clusters
        .iter()
        .flat_map(|c| &c.nodes)
        .flat_map(|n| {
            [n.clock_warning.as_deref(), n.agent_cert_warning.as_deref()]
                .into_iter()
                .flatten()
                .map(|w| format!("warning: {}: {w}", n.name))
        })
        .collect()
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
            .map(|(name, nodes)| ClusterView {
                name,
                nodes,
                snapshot: None,
                api: None,
            })
            .collect(),
        host_wide_figures: false,
        vault: None,
        observability: None,
        policy: None,
        drills: Vec::new(),
    }
}

/// Adds each cluster's newest snapshot in `store` against the RPO. A
/// cluster whose snapshots cannot be listed is left without (and says so in
/// the debug log): status must not fail over it.
pub fn with_snapshots(
    mut v: StatusView,
    status: &StatusResponse,
    store: &SnapshotStore,
    now: SystemTime,
) -> StatusView {
    for c in v.clusters.iter_mut().filter(|c| !c.name.is_empty()) {
        let control_plane_reported = status.nodes.iter().any(|n| {
            n.meta.as_ref().is_some_and(|m| m.cluster == c.name)
                && n.last_report
                    .as_ref()
                    .is_some_and(|r| r.checks.iter().any(runs_etcd))
        });
        match store.list(&c.name) {
            Ok(list) => c.snapshot = Some(rpo::assess(list.last(), control_plane_reported, now)),
            Err(e) => tracing::debug!("listing snapshots of {}: {e}", c.name),
        }
    }
    v
}

/// A control plane whose etcd runs: its `etcd-health` check says something
/// other than "not applicable" (a node before kubeadm init, or one under the
/// local provider, has no etcd, so no snapshot is missing either: such a
/// cluster showed `none,RPO-BREACH`).
fn runs_etcd(check: &proto::v1::Check) -> bool {
    check.name == CONTROL_PLANE_CHECK
        && check.status != proto::v1::CheckStatus::NotApplicable as i32
}

/// The SNAPSHOT cell: the newest snapshot's age, flagged on an RPO breach.
fn snapshot_cell(s: Option<&SnapshotHealth>) -> String {
    let Some(s) = s else {
        return "-".to_owned();
    };
    #[allow(clippy::cast_precision_loss)]
    let when = s
        .age_seconds
        .map(|a| age(a as f64))
        .unwrap_or_else(|| "none".to_owned());
    if s.rpo_breach {
        format!("{when},RPO-BREACH")
    } else {
        when
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
    let refused = n.enrolment_refused.as_ref().is_some_and(|r| r.current);
    match (n.last_report_at.is_some(), n.stale) {
        // Refused since its last report: the token is the problem now.
        _ if refused && !n.connected => format!("{base},refused"),
        (false, _) => format!("{base},no-reports"),
        (true, true) => format!("{base},stale"),
        (true, false) => base.to_owned(),
    }
}

/// The human table: one row per node.
pub fn table(v: &StatusView) -> Table {
    let (cpu, memory) = if v.host_wide_figures {
        ("HOST CPU", "HOST MEMORY")
    } else {
        ("CPU", "MEMORY")
    };
    let mut t = Table::new([
        "CLUSTER",
        "NODE",
        "VM",
        "AGENT",
        "LAST",
        cpu,
        memory,
        "DISK /",
        "FAILING",
        "CERT EXPIRY",
        "API",
        "SNAPSHOT",
    ]);
    for c in &v.clusters {
        for (i, n) in c.nodes.iter().enumerate() {
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
                // Per cluster: on its first row only.
                if i == 0 {
                    api_cell(c.api.as_ref())
                } else {
                    String::new()
                },
                if i == 0 {
                    snapshot_cell(c.snapshot.as_ref())
                } else {
                    String::new()
                },
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
        // Looking must not start anything: after `down`, a status that
        // started a daemon left it listening for nodes that no longer exist.
        let mut client = ControlClient::connect(&socket_path(ctx.home.root()))
            .await
            .map_err(|_| {
                coded(
                    Exit::Precondition,
                    anyhow::anyhow!(
                        "nothing is running for {}; run `hostctl up`",
                        ctx.home.root().display()
                    ),
                )
            })?;
        loop {
            let status = client.status().await?;
            let now = SystemTime::now();
            let mut v = view(&status, &vm_states(ctx).await, now);
            v.host_wide_figures = crate::provider::recorded(ctx.home.root()).ok().flatten()
                == Some(crate::provider::ProviderKind::Local);
            let v = with_snapshots(v, &status, &SnapshotStore::new(ctx.home.root()), now);
            let v = with_api_health(v, &status, ctx).await;
            let v = vault::with_vault(v, ctx).await;
            let v = observability::with_observability(v, ctx).await;
            let v = policy::with_policy(v, ctx).await;
            let v = drills::with_drills(v, ctx.home.root());
            let text = render(ctx.output, &v, || table(&v))?;
            if args.watch && ctx.output == OutputFormat::Table {
                crate::stdout::write("\x1b[2J\x1b[H")?;
            }
            crate::stdout::write(&text)?;
            if ctx.output == OutputFormat::Table {
                for line in node_warnings(&v) {
                    crate::stdout::line(&line)?;
                }
                if let Some(vault) = &v.vault {
                    crate::stdout::line(vault::line(vault))?;
                }
                for line in v.observability.iter().flat_map(observability::lines) {
                    crate::stdout::line(&line)?;
                }
                for line in v.policy.iter().flat_map(policy::lines) {
                    crate::stdout::line(&line)?;
                }
                for line in drills::lines(&v.drills) {
                    crate::stdout::line(&line)?;
                }
                for line in mirrors::lines(ctx).await {
                    crate::stdout::line(&line)?;
                }
                for line in backups::lines(ctx).await {
                    crate::stdout::line(&line)?;
                }
            }
            if v.host_wide_figures && ctx.output == OutputFormat::Table {
                crate::stdout::line(
                    "local provider: the nodes share this machine, so CPU and memory are the host's",
                )?;
            }
            if !args.watch {
                return Ok(Exit::Ok);
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
    })?
}

#[cfg(test)]
pub(super) mod tests;
