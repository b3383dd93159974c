//! `hostctl charts pull|list`: the chart cache under `$HOSTCTL_HOME/charts/`
//! and, when the topology names `mirrors.registryMirror`, its copy in the
//! mirror (docs/platform.md, "Charts offline").
//!
//! `-o json` is the stable interface:
//! ```text
//! pull: [ { "name", "version", "action" ("pulled" | "cached"), "sha256",
//!           "pushed_to" (oci://…|null), "mirror_digest" (string|null) } ]
//! list: [ { "name", "version", "source", "cached" (bool), "problem"
//!           (string|null), "sha256" (string|null), "mirrored" (bool|null:
//!           null without a mirror) } ]
//! ```

use crate::charts::{ChartStore, Mirror, pinned, pull_all, states};
use crate::cli::Context;
use crate::exit::Exit;
use crate::output::{OutputFormat, Table, render};
use crate::workspace::Workspace;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ChartsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ChartsCommand {
    /// Download every pinned chart not yet cached (verified against
    /// charts.lock.json) and, with a registry mirror, push each there.
    Pull,
    /// Every pinned chart: version, source, cached, digest, mirrored.
    List,
}

/// The chart store of this home and topology (also what `up` installs from).
pub fn store(ctx: &Context, workspace: &Workspace) -> ChartStore {
    let ca = crate::environment::CHARTS_CA.os().map(PathBuf::from);
    let mirror = Mirror::from_topology(
        &workspace.topology,
        workspace.resolved.host_agent_address(),
        ca,
        ctx.home.root(),
    );
    ChartStore::new(ctx.home.root(), mirror)
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let workspace = Workspace::recorded(ctx)?;
    let store = store(ctx, &workspace);
    match args.command {
        ChartsCommand::Pull => pull(ctx, &store),
        ChartsCommand::List => list(ctx, &store),
    }
}

fn pull(ctx: &Context, store: &ChartStore) -> anyhow::Result<Exit> {
    let helm = crate::helm::HelmCli::from_env();
    let format = ctx.output;
    let say = move |text: &str| match format {
        OutputFormat::Table => {
            let _ = crate::stdout::line(text);
        }
        _ => eprintln!("{text}"),
    };
    let charts = pinned();
    let reports = crate::cli::block_on(pull_all(store, &helm, &charts, &say))??;
    if format != OutputFormat::Table {
        crate::stdout::write(render(format, &reports, Table::default)?)?;
    } else {
        let pulled = reports.iter().filter(|r| r.action == "pulled").count();
        crate::stdout::line(format!(
            "{} chart(s) in {}: {pulled} pulled, {} already cached{}",
            reports.len(),
            store.cache().dir().display(),
            reports.len() - pulled,
            store
                .mirror()
                .map(|m| format!("; all pushed to {}", m.remote()))
                .unwrap_or_default()
        ))?;
    }
    Ok(Exit::Ok)
}

fn list(ctx: &Context, store: &ChartStore) -> anyhow::Result<Exit> {
    let rows = states(store, &pinned())?;
    let text = render(ctx.output, &rows, || {
        let mut t = Table::new(["NAME", "VERSION", "SOURCE", "CACHED", "SHA256", "MIRRORED"]);
        for r in &rows {
            t.row([
                r.name.to_owned(),
                r.version.to_owned(),
                r.source.clone(),
                match (&r.problem, r.cached) {
                    (Some(_), _) => "CHANGED".to_owned(),
                    (None, true) => "yes".to_owned(),
                    (None, false) => "no".to_owned(),
                },
                r.sha256.clone().unwrap_or_else(|| "-".to_owned()),
                match r.mirrored {
                    None => "-".to_owned(),
                    Some(true) => "yes".to_owned(),
                    Some(false) => "no".to_owned(),
                },
            ]);
        }
        t
    })?;
    crate::stdout::write(&text)?;
    for problem in rows.iter().filter_map(|r| r.problem.as_ref()) {
        eprintln!("warning: {problem}");
    }
    Ok(Exit::Ok)
}
