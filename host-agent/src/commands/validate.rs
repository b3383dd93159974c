//! `hostctl validate [FILE]`: checks a topology and reports every problem,
//! each with file, line, column, field path and fix. Also warns when the
//! VMs need more memory than this host has, and prints the fit report:
//! per node, requests and limits of everything scheduled there against
//! allocatable ([`crate::addons::fit`]).

use crate::addons::fit::{self, FitReport};
use crate::cli::Context;
use crate::exit::Exit;
use crate::output::{OutputFormat, Table, render};
use crate::topology_source::TopologySource;
use serde::Serialize;
use std::path::PathBuf;
use topology::Diagnostic;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The topology file (default: --topology, ./hostctl.yaml, or the built-in default).
    pub file: Option<PathBuf>,
}

/// The machine-readable result (`-o json|yaml`).
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub source: String,
    pub valid: bool,
    pub diagnostics: Vec<Diagnostic>,
    /// Absent when the topology did not load.
    pub fit: Option<FitReport>,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let source = TopologySource::locate(args.file.as_deref().or(ctx.topology.as_deref()));
    let (mut diagnostics, fit): (Vec<Diagnostic>, _) = match source.load() {
        Ok((topology, warnings)) => {
            let mut all = warnings;
            let host_memory = crate::host::total_memory_bytes();
            if host_memory > 0 {
                all.extend(topology::check_host_capacity(&topology, host_memory));
            }
            (all, Some(fit::report(&topology)))
        }
        Err(d) => (d.0, None),
    };
    diagnostics.sort_by_key(|d| (d.line, d.column));
    let valid = !diagnostics.iter().any(Diagnostic::is_error);
    let outcome = Outcome {
        source: source.describe(),
        valid,
        diagnostics,
        fit,
    };
    if ctx.output == OutputFormat::Table {
        print_plain(&outcome);
    } else {
        crate::stdout::write(render(ctx.output, &outcome, Table::default)?)?;
    }
    Ok(if valid {
        Exit::Ok
    } else {
        Exit::InvalidTopology
    })
}

fn print_plain(outcome: &Outcome) {
    for d in &outcome.diagnostics {
        eprintln!("{d}");
    }
    let errors = outcome.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = outcome.diagnostics.len() - errors;
    if let Some(fit) = &outcome.fit {
        let _ = crate::stdout::write(format!("will it fit? (docs/platform.md)\n{}", fit.table()));
        for finding in &fit.findings {
            eprintln!("{finding}");
        }
    }
    if outcome.valid {
        let fit = outcome.fit.as_ref().map_or(0, |f| f.warnings().count());
        let _ = crate::stdout::line(format_args!(
            "{}: valid ({warnings} warning(s), {fit} fit warning(s))",
            outcome.source
        ));
    } else {
        eprintln!(
            "{}: {errors} error(s), {warnings} warning(s)",
            outcome.source
        );
    }
}
