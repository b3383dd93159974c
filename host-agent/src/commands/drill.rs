//! `hostctl verify --drill NAME`: runs one failure drill
//! ([`crate::verify::drill`]) against this home's running environment,
//! prints its steps and each promise against what was observed, records
//! the result under `$HOSTCTL_HOME/drills/`, and exits 6 when a promise was
//! broken. `-o json` prints the record itself:
//!
//! ```text
//! { "drill": "mgmt-down"|"vault-down"|"registry-down",
//!   "outcome": "passed"|"failed"|"not-installed",
//!   "started_at", "finished_at" (RFC 3339), "took_seconds",
//!   "steps": [string],
//!   "observations": [ { "contract", "promise",
//!       "verdict": "holds"|"broken"|"cannot-tell"|"not-installed",
//!       "observed": [string] } ] }
//! ```

use crate::cli::{Context, coded};
use crate::daemon::ControlClient;
use crate::daemon::config::socket_path;
use crate::exit::Exit;
use crate::orchestrator::{STATE_FILE, UpState};
use crate::output::{Table, render};
use crate::state_file::StateDocument as _;
use crate::verify::Verdict;
use crate::verify::drill::env::{DrillEnv, built_clusters};
use crate::verify::drill::record::DrillStore;
use crate::verify::drill::{
    DrillError, DrillName, DrillReport, Observation, Outcome, Pace, Started, mgmt_down,
    registry_down, vault_down,
};
use crate::workspace::Workspace;

pub fn run(ctx: &Context, drill: DrillName) -> anyhow::Result<Exit> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let home = ctx.home.root();
    let workspace = Workspace::recorded(ctx)?;
    let store = DrillStore::new(home);
    let report = crate::cli::block_on(async {
        if drill == DrillName::RegistryDown {
            return registry_down(ctx, &workspace, &store).await;
        }
        let daemon = ControlClient::connect(&socket_path(home))
            .await
            .map_err(|_| {
                DrillError::Precondition(format!(
                    "nothing is running for {}; run `hostctl up`",
                    home.display()
                ))
            })?;
        let provider =
            crate::provider::for_home(home).map_err(|e| DrillError::Precondition(e.to_string()))?;
        let pki = certs::Pki::open(home).ok();
        let mut env = DrillEnv {
            home,
            resolved: &workspace.resolved,
            provider: provider.as_ref(),
            daemon,
            pki: pki.as_ref(),
            state: UpState::load(&home.join(STATE_FILE)).unwrap_or_default(),
        };
        let pace = pace_from_env();
        match drill {
            DrillName::MgmtDown => mgmt_down::run(&mut env, &store, pace).await,
            DrillName::VaultDown => vault_down::run(&mut env, &store, pace).await,
            DrillName::RegistryDown => unreachable!("answered above"),
        }
    })?
    .map_err(|e| coded(Exit::Precondition, e))?;
    store.save(&report)?;
    crate::stdout::write(&render(ctx.output, &report, || table(&report))?)?;
    if ctx.output == crate::output::OutputFormat::Table {
        for step in &report.steps {
            crate::stdout::line(format!("step: {step}"))?;
        }
        crate::stdout::line(format!(
            "drill {}: {} in {} s",
            report.drill.as_str(),
            outcome_word(report.outcome),
            report.took_seconds
        ))?;
    }
    Ok(match report.outcome {
        Outcome::Failed => Exit::ContractBroken,
        Outcome::Passed | Outcome::NotInstalled => Exit::Ok,
    })
}

/// `HOSTCTL_DRILL_DEADLINE_SECS` bounds each wait (default 180 s); tests
/// with slow machines raise it, never lower it below a few intervals.
fn pace_from_env() -> Pace {
    let mut pace = Pace::default();
    if let Some(secs) = crate::environment::DRILL_DEADLINE_SECS
        .string()
        .and_then(|s| s.parse::<u64>().ok())
    {
        pace.deadline = std::time::Duration::from_secs(secs.max(10));
    }
    pace
}

/// `registry-down` needs no agents: Harbor through Docker, the app
/// clusters through their API servers.
async fn registry_down(
    ctx: &Context,
    workspace: &Workspace,
    store: &DrillStore,
) -> Result<DrillReport, DrillError> {
    if !workspace.topology.managed_mirrors() {
        return Ok(registry_not_managed());
    }
    let home = ctx.home.root();
    let docker = crate::mirrors::docker::DockerCli::new(crate::exec::real());
    let mirrors = crate::commands::mirrors::real(ctx, workspace, &docker);
    let pki = certs::Pki::open(home).ok();
    let state = UpState::load(&home.join(STATE_FILE)).unwrap_or_default();
    let clusters = built_clusters(&workspace.resolved, &state, pki.as_ref(), true).await;
    let lab = crate::commands::mirrors::lab_ca(ctx);
    registry_down::run(&mirrors, lab.as_deref(), &clusters, store, pace_from_env()).await
}

/// The topology manages no registry mirror: said, not faked.
fn registry_not_managed() -> DrillReport {
    Started::now().report(
        DrillName::RegistryDown,
        vec![],
        vec![Observation::new(
            "§9.1",
            "with the registry mirror down, running pods keep running and cached images still start",
            Verdict::NotInstalled,
            vec!["the topology manages no registry mirror (`mirrors: {managed: true}` asks for Harbor)".into()],
        )],
    )
}

pub fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "FAILED",
        Outcome::NotInstalled => "not installed",
    }
}

fn table(report: &DrillReport) -> Table {
    let mut t = Table::new(["CONTRACT", "VERDICT", "PROMISE", "OBSERVED"]);
    for o in &report.observations {
        let observed = if o.observed.is_empty() {
            vec![String::new()]
        } else {
            o.observed.clone()
        };
        for (i, seen) in observed.iter().enumerate() {
            let head = match i {
                0 => [o.contract.clone(), o.verdict.to_string(), o.promise.clone()],
                _ => Default::default(),
            };
            t.row(head.into_iter().chain([seen.clone()]));
        }
    }
    t
}
