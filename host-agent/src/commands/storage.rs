//! `hostctl storage up|status|down [--purge]`: the host's object store
//! (Garage; docs/backup.md) that keeps the clusters' Velero backups and
//! the host's etcd and Vault snapshots off the clusters.
//!
//! `-o json` of `status` is the stable interface:
//! ```text
//! { "state" ("running"|"stopped"|"not set up"), "s3_url", "health",
//!   "server" ("process <pid>"|"container"|null),
//!   "copies": [ { "cluster", "kind" ("etcd"|"velero"|"vault"), "newest",
//!                 "age_secs", "state" ("ok"|"overdue"|"none"|"unknown (why)") } ] }
//! ```

use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::orchestrator::steps::object_store::{ObjectStoreUp, StoreUp};
use crate::output::{OutputFormat, Table, render};
use crate::storage::config::Listeners;
use crate::storage::error::StorageError;
use crate::storage::layout::Layout;
use crate::storage::service::Storage;
use crate::storage::{ADMIN_PORT, RPC_PORT, S3_PORT};
use crate::workspace::Workspace;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: StorageCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum StorageCommand {
    /// Start the object store and create its buckets and keys; running it
    /// again changes nothing that is already right.
    Up,
    /// Whether the store runs and what Garage says of its health.
    Status,
    /// Stop the store; the data and keys stay unless --purge.
    Down {
        /// Also delete the store's data, keys and files.
        #[arg(long)]
        purge: bool,
    },
}

/// On a Mac the server runs in Docker Desktop beside the mirrors, as the
/// spec places the host's services; elsewhere (and when `HOSTCTL_GARAGE`
/// names a binary) as a process of the host.
fn in_docker() -> Option<std::sync::Arc<dyn crate::mirrors::docker::Docker>> {
    let macos = cfg!(target_os = "macos");
    (macos && crate::environment::GARAGE.os().is_none()).then(|| {
        std::sync::Arc::new(crate::mirrors::docker::DockerCli::new(crate::exec::real()))
            as std::sync::Arc<dyn crate::mirrors::docker::Docker>
    })
}

/// How long `up` waits for Garage's admin API.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// The store of this home for this topology: S3 on the host's address on
/// the node network (where the clusters' Velero reach it), admin and RPC
/// on loopback.
pub fn real(ctx: &Context, resolved: &topology::Resolved) -> Storage {
    let host = resolved.host_agent_address();
    Storage {
        layout: Layout::new(ctx.home.root()),
        listeners: Listeners {
            s3: SocketAddr::from((host, S3_PORT)),
            admin: SocketAddr::from((Ipv4Addr::LOCALHOST, ADMIN_PORT)),
            rpc: SocketAddr::from((Ipv4Addr::LOCALHOST, RPC_PORT)),
        },
        clusters: resolved
            .topology()
            .clusters()
            .iter()
            .map(|c| c.name.to_string())
            .collect(),
        ready_within: READY_WITHIN,
        garage: None,
        docker: in_docker(),
    }
}

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let workspace = Workspace::recorded(ctx)?;
    let storage = real(ctx, &workspace.resolved);
    crate::cli::block_on(async {
        match &args.command {
            StorageCommand::Up => {
                let changed = storage
                    .up()
                    .await
                    .map_err(|e| coded(Exit::Precondition, e))?;
                if changed.is_empty() {
                    crate::stdout::line("storage: the object store is up and configured")?;
                }
                for change in changed {
                    crate::stdout::line(format!("storage: {change}"))?;
                }
                Ok(Exit::Ok)
            }
            StorageCommand::Status => {
                let status = storage.status().await;
                let mut text = render(ctx.output, &status, || {
                    let mut t = Table::new(["STORE", "S3", "STATE", "HEALTH"]);
                    t.row([
                        "garage".to_owned(),
                        status.s3_url.clone(),
                        status.state.clone(),
                        status.health.clone(),
                    ]);
                    t
                })?;
                if ctx.output == OutputFormat::Table && !status.copies.is_empty() {
                    text.push('\n');
                    text.push_str(&copies_table(&status.copies).to_string());
                }
                crate::stdout::write(&text)?;
                Ok(Exit::Ok)
            }
            StorageCommand::Down { purge } => {
                for line in storage
                    .down(*purge)
                    .await
                    .map_err(|e| coded(Exit::Precondition, e))?
                {
                    crate::stdout::line(line)?;
                }
                Ok(Exit::Ok)
            }
        }
    })?
}

/// `hostctl up`'s storage step (`backups: { managed: true }`): the store
/// up and configured, and each cluster's backup target for Velero.
/// The real object store as `hostctl up`'s `object-store/host` step starts
/// it, with each cluster's Velero location and key.
pub struct HostObjectStore(Storage);

impl HostObjectStore {
    pub fn new(ctx: &Context, workspace: &Workspace) -> HostObjectStore {
        HostObjectStore(real(ctx, &workspace.resolved))
    }
}

#[async_trait::async_trait]
impl ObjectStoreUp for HostObjectStore {
    async fn up(&self) -> Result<StoreUp, StorageError> {
        let storage = &self.0;
        let changes = storage.up().await?;
        let mut targets = std::collections::BTreeMap::new();
        for cluster in &storage.clusters {
            targets.insert(cluster.clone(), storage.backup_target(cluster)?);
        }
        Ok(StoreUp { changes, targets })
    }
}

/// The newest copies, one row per cluster and kind.
fn copies_table(copies: &[crate::storage::copies::Copy]) -> Table {
    let mut t = Table::new(["CLUSTER", "COPY", "NEWEST", "AGE", "RPO 24h"]);
    for c in copies {
        t.row([
            c.cluster.clone(),
            c.kind.to_owned(),
            c.newest.clone().unwrap_or_else(|| "-".into()),
            c.age_secs
                .map(|a| format!("{}h{:02}m", a / 3600, a % 3600 / 60))
                .unwrap_or_else(|| "-".into()),
            c.state.clone(),
        ]);
    }
    t
}

/// After `etcd snapshot` stored a snapshot: copies the cluster's snapshots
/// into the store's `etcd` bucket, when this home has a store running.
/// `None`: no store (nothing to do); the copy is an extra, so its failure
/// is reported by the caller, not fatal to the snapshot on the host.
pub async fn copy_etcd_offsite(
    ctx: &Context,
    snapshots: &crate::snapshots::SnapshotStore,
    cluster: &str,
) -> Option<anyhow::Result<Vec<crate::storage::offsite::Uploaded>>> {
    let workspace = Workspace::recorded(ctx).ok()?;
    let storage = real(ctx, &workspace.resolved);
    storage.server().await?;
    Some(
        async {
            let client = storage.host_client()?;
            Ok(crate::storage::offsite::upload_etcd(&client, snapshots, cluster).await?)
        }
        .await,
    )
}
