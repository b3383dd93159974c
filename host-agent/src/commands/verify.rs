//! `hostctl verify [--cluster C]`: the architecture contracts C1–C6, each
//! with a verdict and its evidence ([`crate::verify`]), from the
//! configuration hostctl renders for the topology (what `up` applies) and,
//! for every cluster `up` built, from the running cluster; `-o json` is
//! the stable interface:
//!
//! ```text
//! { "checks": [ { "contract": "C1".."C6", "promise", "cluster"?,
//!                 "source": "rendered"|"live",
//!                 "verdict": "holds"|"broken"|"cannot-tell"|"not-installed",
//!                 "evidence": [string] } ],
//!   "not_live"?: [string] }
//! ```
//!
//! Exits 6 when any contract is broken, so a script can gate on it.

use crate::cli::{Context, coded};
use crate::cluster_api::client::admin_client;
use crate::cluster_api::health::STATUS_TIMEOUT;
use crate::exit::Exit;
use crate::orchestrator::{STATE_FILE, UpState};
use crate::output::{Table, render};
use crate::state_file::StateDocument as _;
use crate::verify::{Report, Source, facts, live, rendered};
use crate::workspace::Workspace;
use std::sync::Arc;
use topology::Resolved;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check only this cluster (C4, about placement, still looks at all).
    #[arg(long, value_name = "CLUSTER", conflicts_with = "drill")]
    pub cluster: Option<String>,
    /// Run a failure drill instead: stop what a contract protects against,
    /// observe, put it back (docs/verify.md).
    #[arg(long, value_name = "NAME")]
    pub drill: Option<crate::verify::drill::DrillName>,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    if let Some(drill) = args.drill {
        return crate::commands::drill::run(ctx, drill);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let workspace = Workspace::recorded(ctx)?;
    let mut report = rendered::report(&workspace.resolved, args.cluster.as_deref())
        .map_err(|e| coded(Exit::Usage, e))?;
    let resolved = Arc::new(workspace.resolved);
    crate::cli::block_on(with_live(
        &mut report,
        ctx,
        resolved.clone(),
        args.cluster.as_deref(),
    ))?;
    with_facts(&mut report, ctx, &resolved, args.cluster.as_deref());
    let vault = crate::cli::block_on(crate::commands::status::vault::read(ctx))?;
    report
        .checks
        .push(facts::vault_seal(vault.map(|v| match v.status {
            Some(s) => Ok(s),
            None => Err(v.error.unwrap_or_else(|| "no answer".into())),
        })));
    let managed = resolved.topology().managed_backups();
    let store = if managed {
        let storage = crate::commands::storage::real(ctx, &resolved);
        Some(crate::cli::block_on(storage.status())?)
    } else {
        None
    };
    report.checks.push(facts::backups(managed, store.as_ref()));
    let mirrors = crate::cli::block_on(crate::commands::status::mirrors::health(ctx))?;
    report.checks.push(facts::mirrors(mirrors.as_deref()));
    crate::stdout::write(&render(ctx.output, &report, || table(&report))?)?;
    Ok(if report.any_broken() {
        Exit::ContractBroken
    } else {
        Exit::Ok
    })
}

/// Adds each cluster's live checks: those `up` built (its `kubeconfig`
/// step done) and this home holds the CA of, side by side; the others are
/// listed as not checked live, with why.
async fn with_live(
    report: &mut Report,
    ctx: &Context,
    resolved: Arc<Resolved>,
    only: Option<&str>,
) {
    let state = UpState::load(&ctx.home.root().join(STATE_FILE)).unwrap_or_default();
    let pki = certs::Pki::open(ctx.home.root()).ok().map(Arc::new);
    let mut probes = tokio::task::JoinSet::new();
    for cluster in resolved.topology().clusters() {
        if only.is_some_and(|o| o != cluster.name) {
            continue;
        }
        let (name, role) = (cluster.name.clone(), cluster.role);
        let Some(pki) = pki
            .clone()
            .filter(|_| state.step_done(&format!("kubeconfig/{name}")))
        else {
            report.not_live.push(format!(
                "{name}: not up (no `hostctl up` has built it in this home)"
            ));
            continue;
        };
        let resolved = resolved.clone();
        probes.spawn(async move {
            match admin_client(&pki, &resolved, &name, STATUS_TIMEOUT).await {
                Ok((client, _)) => live::cluster_checks(&client, &name, role).await,
                Err(e) => live::unreachable(&name, role, &e.to_string()),
            }
        });
    }
    while let Some(done) = probes.join_next().await {
        report.checks.extend(done.unwrap_or_default());
    }
    report.checks.sort_by(|a, b| {
        (a.contract, &a.cluster, a.source).cmp(&(b.contract, &b.cluster, b.source))
    });
}

/// The SLO facts this home can judge: each built cluster's newest etcd
/// snapshot against the RPO, and the PKI's nearest expiry.
fn with_facts(report: &mut Report, ctx: &Context, resolved: &Resolved, only: Option<&str>) {
    let state = UpState::load(&ctx.home.root().join(STATE_FILE)).unwrap_or_default();
    let built: Vec<String> = resolved
        .topology()
        .clusters()
        .iter()
        .map(|c| c.name.clone())
        .filter(|c| only.is_none_or(|o| o == c) && state.step_done(&format!("kubeconfig/{c}")))
        .collect();
    let now = std::time::SystemTime::now();
    let store = crate::snapshots::SnapshotStore::new(ctx.home.root());
    report.checks.extend(facts::snapshots(&store, &built, now));
    if let Ok(inventory) = certs::Pki::open(ctx.home.root()).and_then(|p| p.inventory()) {
        let certs: Vec<(String, std::time::SystemTime)> = inventory
            .iter()
            .filter_map(|c| {
                let at: proto::Timestamp = c.not_after.parse().ok()?;
                Some((c.path.display().to_string(), proto::system_time(&at)?))
            })
            .collect();
        report.checks.push(facts::certificates(&certs, now));
    }
}

fn table(report: &Report) -> Table {
    let mut t = Table::new(["CONTRACT", "CLUSTER", "FROM", "VERDICT", "EVIDENCE"]);
    for c in &report.checks {
        let cluster = c.cluster.clone().unwrap_or_else(|| "(all)".into());
        let from = match c.source {
            Source::Rendered => "rendered",
            Source::Live => "live",
        };
        for (i, e) in c.evidence.iter().enumerate() {
            let head = match i {
                0 => [
                    c.contract.to_owned(),
                    cluster.clone(),
                    from.to_owned(),
                    c.verdict.to_string(),
                ],
                _ => Default::default(),
            };
            t.row(head.into_iter().chain([e.clone()]));
        }
    }
    for why in &report.not_live {
        t.row(["", "", "", "", &format!("not checked live: {why}")]);
    }
    t
}
