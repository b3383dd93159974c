//! `hostctl addons list|status`: the catalogue, and each add-on per
//! cluster as installed and as the cluster reports it now.
//!
//! `status -o json` is the stable interface:
//! ```text
//! { "clusters": [ { "name", "reachable" (bool), "error" (string|null),
//!     "addons": [ { "name", "version" (pinned chart|null), "installed_version"
//!       (string|null), "installed_at" (RFC 3339|null), "state" ("done" |
//!       "failed" | "running" | "pending" | "not installed": its `up` step),
//!       "error" (the step's, string|null), "ready" (bool|null: null when the
//!       API could not be asked), "why_not" (string|null), "checks" ([ {
//!       "what", "ready", "why_not" } ]) } ] } ] }
//! ```

use crate::addons::readiness::{Check, check, first_unmet};
use crate::addons::record::AddonRecord;
use crate::addons::{Addon, ChartRepo, catalogue};
use crate::cli::Context;
use crate::exit::Exit;
use crate::orchestrator::{STATE_FILE, StepId, StepStatus, UpState};
use crate::output::{Table, render};
use crate::state_file::StateDocument as _;
use crate::workspace::Workspace;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: AddonsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AddonsCommand {
    /// The catalogue: every add-on, where it goes, its pinned chart.
    List,
    /// Each add-on per cluster: installed version, its `up` step, and
    /// whether the cluster reports it ready (and why not).
    Status {
        /// Only this cluster.
        cluster: Option<String>,
    },
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    match &args.command {
        AddonsCommand::List => list(ctx),
        AddonsCommand::Status { cluster } => status(ctx, cluster.as_deref()),
    }
}

#[derive(Serialize)]
struct ListEntry {
    name: &'static str,
    clusters: &'static str,
    namespace: &'static str,
    chart: Option<String>,
    version: Option<&'static str>,
    depends_on: &'static [&'static str],
    summary: &'static str,
}

fn chart_reference(addon: &Addon) -> Option<String> {
    addon.chart.map(|c| match c.repo {
        ChartRepo::Http(url) => format!("{url} {}", c.name),
        ChartRepo::Oci(url) => format!("{url}/{}", c.name),
    })
}

fn list(ctx: &Context) -> anyhow::Result<Exit> {
    let entries: Vec<ListEntry> = catalogue()
        .iter()
        .map(|a| ListEntry {
            name: a.name,
            clusters: a.placement.as_str(),
            namespace: a.namespace,
            chart: chart_reference(a),
            version: a.chart.map(|c| c.version),
            depends_on: a.depends_on,
            summary: a.summary,
        })
        .collect();
    let text = render(ctx.output, &entries, || {
        let mut t = Table::new(["NAME", "CLUSTERS", "NAMESPACE", "VERSION", "AFTER", "WHAT"]);
        for e in &entries {
            t.row([
                e.name.to_owned(),
                e.clusters.to_owned(),
                e.namespace.to_owned(),
                e.version.unwrap_or("-").to_owned(),
                if e.depends_on.is_empty() {
                    "-".to_owned()
                } else {
                    e.depends_on.join(",")
                },
                e.summary.to_owned(),
            ]);
        }
        t
    })?;
    crate::stdout::write(&text)?;
    Ok(Exit::Ok)
}

#[derive(Serialize)]
struct StatusReport {
    clusters: Vec<ClusterStatus>,
}

#[derive(Serialize)]
struct ClusterStatus {
    name: String,
    reachable: bool,
    error: Option<String>,
    addons: Vec<AddonStatus>,
}

#[derive(Serialize)]
struct AddonStatus {
    name: &'static str,
    version: Option<&'static str>,
    installed_version: Option<String>,
    installed_at: Option<String>,
    state: &'static str,
    error: Option<String>,
    ready: Option<bool>,
    why_not: Option<String>,
    checks: Vec<Check>,
}

/// How long the status waits for a cluster's API server.
const API_TIMEOUT: Duration = Duration::from_secs(5);

fn status(ctx: &Context, only: Option<&str>) -> anyhow::Result<Exit> {
    let workspace = Workspace::recorded(ctx)?;
    let resolved = &workspace.resolved;
    let home = ctx.home.root();
    let record = AddonRecord::load(&AddonRecord::path(home))?;
    let steps = UpState::load(&home.join(STATE_FILE))?;
    let pki = certs::Pki::open(home).ok();
    let clusters: Vec<&topology::Cluster> = resolved
        .topology()
        .clusters()
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.name))
        .collect();
    if let Some(name) = only
        && clusters.is_empty()
    {
        anyhow::bail!("cluster {name} is not in the topology");
    }
    let report = crate::cli::block_on(async {
        let mut out = Vec::new();
        for cluster in clusters {
            let client = match &pki {
                Some(pki) => crate::cluster_api::client::admin_client(
                    pki,
                    resolved,
                    &cluster.name,
                    API_TIMEOUT,
                )
                .await
                .map(|(c, _)| c)
                .map_err(|e| e.to_string()),
                None => Err("no PKI yet (`hostctl up` creates it)".to_owned()),
            };
            let mut status = ClusterStatus {
                name: cluster.name.clone(),
                reachable: client.is_ok(),
                error: client.as_ref().err().cloned(),
                addons: Vec::new(),
            };
            let mgmt_exists = resolved.topology().mgmt_cluster().is_some();
            let available =
                crate::addons::Available::new(mgmt_exists, resolved.topology().managed_backups());
            for addon in Addon::for_role(cluster.role, available) {
                let live = match &client {
                    Ok(c) => Some(check(c, addon, addon.readiness).await),
                    Err(_) => None,
                };
                status
                    .addons
                    .push(addon_status(addon, &cluster.name, &record, &steps, live));
            }
            if let Some(unreachable) = status.addons.iter().find_map(|a| {
                (a.ready.is_none() && status.reachable)
                    .then(|| a.why_not.clone())
                    .flatten()
            }) {
                status.reachable = false;
                status.error = Some(unreachable);
            }
            out.push(status);
        }
        StatusReport { clusters: out }
    })?;
    let text = render(ctx.output, &report, || table(&report))?;
    crate::stdout::write(&text)?;
    Ok(Exit::Ok)
}

fn addon_status(
    addon: &'static Addon,
    cluster: &str,
    record: &AddonRecord,
    steps: &UpState,
    live: Option<Result<Vec<Check>, crate::cluster_api::KubeError>>,
) -> AddonStatus {
    let installed = record.get(cluster, addon.name);
    let id: Option<StepId> = format!("addon/{cluster}/{}", addon.name).parse().ok();
    let step = id.as_ref().and_then(|id| steps.steps.get(id));
    let state = match step.map(|s| s.status) {
        Some(StepStatus::Done) => "done",
        Some(StepStatus::Failed) => "failed",
        Some(StepStatus::Running) => "running",
        Some(StepStatus::Pending) => "pending",
        None => "not installed",
    };
    let (ready, why_not, checks) = match live {
        Some(Ok(checks)) => {
            let why = first_unmet(&checks);
            (Some(why.is_none()), why, checks)
        }
        Some(Err(e)) => (None, Some(e.to_string()), Vec::new()),
        None => (None, None, Vec::new()),
    };
    AddonStatus {
        name: addon.name,
        version: addon.chart.map(|c| c.version),
        installed_version: installed.and_then(|i| i.version.clone()),
        installed_at: installed.map(|i| i.installed_at.clone()),
        state,
        error: step.and_then(|s| s.error.clone()),
        ready,
        why_not,
        checks,
    }
}

fn table(report: &StatusReport) -> Table {
    let mut t = Table::new([
        "CLUSTER",
        "ADDON",
        "VERSION",
        "INSTALLED",
        "STEP",
        "READY",
        "WHY NOT",
    ]);
    for c in &report.clusters {
        for a in &c.addons {
            let ready = match a.ready {
                Some(true) => "yes",
                Some(false) => "no",
                None => "?",
            };
            let why = a
                .why_not
                .clone()
                .or_else(|| a.error.clone())
                .or_else(|| (!c.reachable).then(|| c.error.clone()).flatten())
                .unwrap_or_else(|| "-".to_owned());
            t.row([
                c.name.clone(),
                a.name.to_owned(),
                a.version.unwrap_or("-").to_owned(),
                a.installed_version.clone().unwrap_or_else(|| "-".into()),
                a.state.to_owned(),
                ready.to_owned(),
                why,
            ]);
        }
    }
    t
}
