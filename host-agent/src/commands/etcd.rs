//! `hostctl etcd snapshot|list|restore`: etcd snapshots of the clusters'
//! control planes, stored under `$HOSTCTL_HOME/snapshots/<cluster>/`.
//!
//! The CLI dials the control-plane agent's `Etcd` service directly with the
//! admin identity (as `hostctl logs` does); the control plane and its
//! address come from the topology, or `--address`.

use crate::workspace::Workspace;
use std::net::SocketAddr;
use std::time::SystemTime;

use anyhow::{Context as _, anyhow, bail};
use proto::v1::progress_event::Outcome;

use crate::agent_plane::NODE_SERVICE_PORT;
use crate::cli::{Context, coded};
use crate::commands::logs::{dial, parse_address};
use crate::exit::Exit;
use crate::output::{Table, render};
use crate::snapshots::store::DEFAULT_KEEP;
use crate::snapshots::{SnapshotInfo, SnapshotStore, node};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Take a snapshot of a cluster's etcd through its control-plane agent.
    Snapshot(SnapshotArgs),
    /// List stored snapshots, oldest first.
    List(ListArgs),
    /// Restore a cluster's etcd from a stored snapshot (stops its control
    /// plane; the old data directory is kept for rollback).
    Restore(RestoreArgs),
}

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    /// The cluster (see the topology).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub cluster: Option<String>,
    /// Every cluster in the topology.
    #[arg(long)]
    pub all: bool,
    /// Snapshots kept per cluster after this one is stored.
    #[arg(long, default_value_t = DEFAULT_KEEP, value_name = "N")]
    pub keep: usize,
    /// The control-plane agent's address (`IP` uses port 7445).
    #[arg(long, value_name = "IP[:PORT]", conflicts_with = "all")]
    pub address: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this cluster.
    pub cluster: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    pub cluster: String,
    /// The snapshot's file name (or a unique prefix), from `hostctl etcd list`.
    pub snapshot: String,
    /// Confirm: the cluster's state is replaced by the snapshot's.
    #[arg(long)]
    pub yes: bool,
    /// The control-plane agent's address (`IP` uses port 7445).
    #[arg(long, value_name = "IP[:PORT]")]
    pub address: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = SnapshotStore::new(ctx.home.root());
    match &args.command {
        Sub::List(a) => list(ctx, &store, a),
        Sub::Snapshot(a) => crate::cli::block_on(snapshot(ctx, &store, a))?,
        Sub::Restore(a) => crate::cli::block_on(restore(ctx, &store, a))?,
    }
}

/// The name of `cluster`'s control-plane node in the topology.
fn control_plane_of(ctx: &Context, cluster: &str) -> anyhow::Result<String> {
    let workspace = Workspace::recorded(ctx)?;
    workspace
        .topology
        .control_plane(cluster)
        .map(|n| n.name.clone())
        .ok_or_else(|| {
            coded(
                Exit::Usage,
                anyhow!("the topology has no control plane for {cluster}"),
            )
        })
}

/// Every cluster of the topology and its control plane's agent address.
fn control_planes(ctx: &Context) -> anyhow::Result<Vec<(String, Option<SocketAddr>)>> {
    let workspace = Workspace::recorded(ctx)?;
    let (topology, resolved) = (&workspace.topology, &workspace.resolved);
    Ok(topology
        .clusters()
        .iter()
        .map(|c| {
            let addr = topology
                .control_plane(&c.name)
                .and_then(|n| resolved.node_ip(&n.name))
                .map(|ip| SocketAddr::new(ip.into(), NODE_SERVICE_PORT));
            (c.name.clone(), addr)
        })
        .collect())
}

async fn address_of(
    ctx: &Context,
    cluster: &str,
    explicit: Option<&str>,
) -> anyhow::Result<SocketAddr> {
    if let Some(a) = explicit {
        return parse_address(a);
    }
    control_planes(ctx)?
        .into_iter()
        .find(|(c, _)| c == cluster)
        .and_then(|(_, a)| a)
        .ok_or_else(|| anyhow!("cluster {cluster:?} has no control plane in the topology"))
}

async fn snapshot(
    ctx: &Context,
    store: &SnapshotStore,
    args: &SnapshotArgs,
) -> anyhow::Result<Exit> {
    let clusters: Vec<String> = match &args.cluster {
        Some(c) => vec![c.clone()],
        None => control_planes(ctx)?.into_iter().map(|(c, _)| c).collect(),
    };
    let mut failed = 0;
    for cluster in &clusters {
        let result = async {
            let addr = address_of(ctx, cluster, args.address.as_deref()).await?;
            // The snapshot is stored under the cluster dialled, as the
            // topology names it, never as the node's reply claims.
            let source = crate::snapshots::Source {
                cluster: cluster.clone(),
                node: control_plane_of(ctx, cluster)?,
            };
            let stored = node::pull_from(dial(ctx, addr).await?, store, &source)
                .await
                .with_context(|| format!("snapshot of {cluster}"))?;
            let pruned = store.prune(cluster, args.keep.max(1))?;
            Ok::<_, anyhow::Error>((stored, pruned))
        }
        .await;
        match result {
            Ok((stored, pruned)) => {
                let i = &stored.info;
                let what = if stored.already_stored {
                    "already stored as"
                } else {
                    "stored"
                };
                crate::stdout::line(format_args!(
                    "{cluster}: {what} {} (revision {}, {} bytes, etcd {}, sha256 {})",
                    stored.path.display(),
                    i.revision,
                    i.size,
                    i.etcd_version,
                    &i.sha256[..12.min(i.sha256.len())]
                ))?;
                for p in pruned {
                    crate::stdout::line(format_args!(
                        "{cluster}: removed {p} (--keep {})",
                        args.keep
                    ))?;
                }
                match super::storage::copy_etcd_offsite(ctx, store, cluster).await {
                    None => {}
                    Some(Ok(copied)) => {
                        let sent = copied.iter().filter(|u| u.sent).count();
                        crate::stdout::line(format_args!(
                            "{cluster}: object store has all {} snapshot files (etcd bucket, sha256 checked; {sent} sent now)",
                            copied.len()
                        ))?;
                    }
                    Some(Err(e)) => {
                        eprintln!(
                            "{cluster}: warning: not copied to the object store: {e:#}; `hostctl etcd snapshot` again retries"
                        )
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{cluster}: {e:#}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} snapshots failed", clusters.len());
    }
    Ok(Exit::Ok)
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn list(ctx: &Context, store: &SnapshotStore, args: &ListArgs) -> anyhow::Result<Exit> {
    let clusters = match &args.cluster {
        Some(c) => vec![c.clone()],
        None => store.clusters()?,
    };
    let mut all: Vec<SnapshotInfo> = Vec::new();
    for c in &clusters {
        all.extend(store.list(c)?);
    }
    let now = SystemTime::now();
    let text = render(ctx.output, &all, || {
        let mut t = Table::new([
            "CLUSTER", "SNAPSHOT", "REVISION", "SIZE", "AGE", "NODE", "ORIGIN", "ETCD",
        ]);
        for i in &all {
            t.row([
                i.cluster.clone(),
                i.file.clone(),
                i.revision.to_string(),
                i.size.to_string(),
                human_age(i.age(now).as_secs()),
                i.node.clone(),
                i.origin.clone(),
                i.etcd_version.clone(),
            ]);
        }
        t
    })?;
    crate::stdout::write(&text)?;
    Ok(Exit::Ok)
}

async fn restore(ctx: &Context, store: &SnapshotStore, args: &RestoreArgs) -> anyhow::Result<Exit> {
    let (path, info) = store.find(&args.cluster, &args.snapshot)?;
    if !args.yes {
        return Err(coded(
            Exit::Usage,
            anyhow!(
                "restoring {} replaces cluster {}'s state with revision {}; add --yes to confirm",
                info.file,
                args.cluster,
                info.revision
            ),
        ));
    }
    restore_on_node(
        ctx,
        &args.cluster,
        &path,
        &info,
        args.address.as_deref(),
        None,
    )
    .await?;
    Ok(Exit::Ok)
}

/// Streams the stored snapshot at `path` to `cluster`'s control-plane
/// agent (the topology's, or `address`) and prints the node's progress;
/// the restore of `etcd restore` and of `recover etcd|node`, which have
/// already confirmed and checked the snapshot. `seed`: onto a control
/// plane kubeadm has not initialised yet (`recover node`).
pub(crate) async fn restore_on_node(
    ctx: &Context,
    cluster: &str,
    path: &std::path::Path,
    info: &SnapshotInfo,
    address: Option<&str>,
    seed: Option<proto::v1::EtcdSeed>,
) -> anyhow::Result<()> {
    let addr = address_of(ctx, cluster, address).await?;
    let channel = dial(ctx, addr).await?;
    let last = node::restore(channel, path, info, true, seed, |e| {
        // A closed stdout must not cut a restore short: the choreography
        // runs to its end either way.
        let _ = crate::stdout::line(format_args!("[{}] {}", e.phase, e.message));
    })
    .await?;
    match last.and_then(|e| e.outcome) {
        Some(Outcome::Done(_)) => Ok(()),
        Some(Outcome::Error(e)) => {
            if !e.detail.is_empty() {
                eprintln!("{}", e.detail);
            }
            bail!("restore of {cluster} failed: {}", e.message)
        }
        None => bail!("the node ended the restore without an outcome"),
    }
}
