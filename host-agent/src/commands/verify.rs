//! `hostctl verify [--cluster C]`: the architecture contracts C1–C6, each
//! with a verdict and its evidence ([`crate::verify`]). Today the evidence
//! is the configuration hostctl renders for the topology (what `up`
//! applies); `-o json` is the stable interface:
//!
//! ```text
//! { "source": "rendered",
//!   "checks": [ { "contract": "C1".."C6", "promise", "cluster"?,
//!                 "verdict": "holds"|"broken"|"cannot-tell"|"not-installed",
//!                 "evidence": [string] } ] }
//! ```
//!
//! Exits 6 when any contract is broken, so a script can gate on it.

use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::output::{Table, render};
use crate::verify::{Report, rendered};
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check only this cluster (C4, about placement, still looks at all).
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let workspace = Workspace::recorded(ctx)?;
    let report = rendered::report(&workspace.resolved, args.cluster.as_deref())
        .map_err(|e| coded(Exit::Usage, e))?;
    crate::stdout::write(&render(ctx.output, &report, || table(&report))?)?;
    Ok(if report.any_broken() {
        Exit::ContractBroken
    } else {
        Exit::Ok
    })
}

fn table(report: &Report) -> Table {
    let mut t = Table::new(["CONTRACT", "CLUSTER", "VERDICT", "EVIDENCE"]);
    for c in &report.checks {
        let cluster = c.cluster.clone().unwrap_or_else(|| "(all)".into());
        for (i, e) in c.evidence.iter().enumerate() {
            let (contract, cluster, verdict) = match i {
                0 => (
                    c.contract.to_owned(),
                    cluster.clone(),
                    c.verdict.to_string(),
                ),
                _ => (String::new(), String::new(), String::new()),
            };
            t.row([contract, cluster, verdict, e.clone()]);
        }
    }
    t
}
