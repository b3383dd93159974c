//! `hostctl init`: writes the default topology for the user to edit and
//! creates the PKI for its clusters. Safe to run again: an existing file is
//! kept (unless `--force`) and existing PKI material is reused as it is.

use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::fsutil::write_atomic;
use crate::pki::ensure_pki;
use crate::topology_source::DEFAULT_FILE;
use crate::workspace::Workspace;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the topology.
    #[arg(long, short = 'f', default_value = DEFAULT_FILE, value_name = "FILE")]
    pub file: PathBuf,

    /// Overwrite an existing topology file with the default.
    #[arg(long)]
    pub force: bool,

    /// Only write the topology; do not create the PKI.
    #[arg(long)]
    pub no_pki: bool,
}

/// Writes the topology file, then ensures the PKI for the clusters it names.
pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    if args.file.exists() && !args.force {
        eprintln!(
            "{} exists; kept it (use --force to replace it with the default)",
            args.file.display()
        );
    } else {
        write_atomic(&args.file, topology::default_yaml().as_bytes(), 0o644)
            .map_err(|e| coded(Exit::Failure, e))?;
        eprintln!("wrote the default topology to {}", args.file.display());
    }
    let ctx = Context {
        topology: Some(args.file.clone()),
        ..ctx.clone()
    };
    let workspace = Workspace::recorded(&ctx)?;
    if args.no_pki {
        return Ok(Exit::Ok);
    }
    let pki = ensure_pki(&ctx, &workspace.resolved)?;
    if let Some(change) = pki.host_reissued() {
        eprintln!("{change}");
    }
    eprintln!("PKI ready in {}", pki.root().display());
    eprintln!(
        "next: edit {} if needed, then `hostctl validate` and `hostctl up`",
        args.file.display()
    );
    Ok(Exit::Ok)
}
