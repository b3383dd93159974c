//! `hostctl kubeconfig [CLUSTER] [--merge]`: admin kubeconfigs minted from
//! the host's cluster CAs. Without `--merge` the kubeconfig (one cluster or
//! all of them, contexts `mgmt`, `app1`, `app2`) goes to stdout; with
//! `--merge` it is merged into `$KUBECONFIG` (first path) or
//! `~/.kube/config`, keeping every other entry (see [`crate::cluster_api::merge`]).

use crate::cli::{Context, coded};
use crate::cluster_api::kubeconfig::admin_kubeconfig;
use crate::cluster_api::merge::{merge, merge_into_file, target_path};
use crate::exit::Exit;
use crate::workspace::Workspace;
use anyhow::{Context as _, anyhow};
use ipnet::Ipv4Net;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One cluster (default: every cluster of the topology).
    pub cluster: Option<String>,

    /// Merge into $KUBECONFIG (its first path) or ~/.kube/config instead of
    /// printing; other clusters, users and contexts are kept.
    #[arg(long)]
    pub merge: bool,

    /// With --merge: the file to merge into.
    #[arg(long, value_name = "PATH", requires = "merge")]
    pub file: Option<PathBuf>,

    /// With --merge: make the (first) cluster's context the current one
    /// (otherwise it changes only when none is set).
    #[arg(long, requires = "merge")]
    pub switch: bool,

    /// Resolve host numbers against this subnet instead of the one the last
    /// `up` recorded (as for `hostctl render`).
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<Ipv4Net>,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let workspace = Workspace::explicit(ctx, args.subnet)?;
    let (topology, resolved) = (&workspace.topology, &workspace.resolved);
    let names: Vec<String> = match &args.cluster {
        Some(name) if topology.cluster(name).is_none() => {
            let known: Vec<&str> = topology
                .clusters()
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(coded(
                Exit::Usage,
                anyhow!(
                    "no cluster {name} in the topology (clusters: {})",
                    known.join(", ")
                ),
            ));
        }
        Some(name) => vec![name.clone()],
        None => topology.clusters().iter().map(|c| c.name.clone()).collect(),
    };
    let pki = crate::pki::open_existing(ctx)?;
    let kubeconfigs = names
        .iter()
        .map(|name| admin_kubeconfig(&pki, resolved, name))
        .collect::<Result<Vec<_>, _>>()?;
    if !args.merge {
        crate::stdout::write(merge("", "-", &kubeconfigs, None)?)?;
        return Ok(Exit::Ok);
    }
    let path = args
        .file
        .clone()
        .or_else(|| {
            target_path(
                crate::environment::standard::KUBECONFIG.os().as_deref(),
                crate::environment::standard::HOME
                    .os()
                    .map(PathBuf::from)
                    .as_deref(),
            )
        })
        .ok_or_else(|| anyhow!("neither $KUBECONFIG nor $HOME is set: pass --file"))?;
    let switch_to = args.switch.then(|| names[0].as_str());
    merge_into_file(&path, &kubeconfigs, switch_to)
        .with_context(|| format!("merging into {}", path.display()))?;
    eprintln!(
        "merged context(s) {} into {}",
        names.join(", "),
        path.display()
    );
    Ok(Exit::Ok)
}
