//! Which etcd snapshot a recovery restores (`recover etcd`, `recover
//! node`): chosen once by the step "choose" — the host's named or newest,
//! else one fetched from the object store — checked to be the cluster's,
//! and read back from the record by a rerun.

use super::refusal;
use crate::cli::Context;
use crate::recover::etcd;
use crate::recover::record::Record;
use crate::snapshots::{SnapshotInfo, SnapshotStore};
use crate::workspace::Workspace;
use anyhow::{Context as _, anyhow};
use std::path::{Path, PathBuf};

/// The flags that pick the snapshot.
#[derive(Debug, Clone, clap::Args)]
pub struct SnapshotChoice {
    /// The snapshot's file name (or a unique prefix); default: the newest.
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// Fetch the snapshot from the object store's `etcd` bucket even when
    /// the host has one (it is also fetched when the host has none).
    #[arg(long)]
    pub from_store: bool,
}

/// A snapshot in the host's store.
pub(super) struct Chosen {
    pub(super) path: PathBuf,
    pub(super) info: SnapshotInfo,
}

/// The snapshot of one recovery, once chosen.
pub(super) struct SnapshotSource {
    store: SnapshotStore,
    cluster: String,
    choice: SnapshotChoice,
    chosen: Option<Chosen>,
}

impl SnapshotSource {
    pub(super) fn new(home: &Path, cluster: &str, choice: &SnapshotChoice) -> SnapshotSource {
        SnapshotSource {
            store: SnapshotStore::new(home),
            cluster: cluster.to_owned(),
            choice: choice.clone(),
            chosen: None,
        }
    }

    /// The chosen snapshot (an error before the choice).
    pub(super) fn chosen(&self) -> anyhow::Result<&Chosen> {
        self.chosen
            .as_ref()
            .ok_or_else(|| anyhow!("no snapshot chosen"))
    }

    /// The choice an interrupted run recorded, for the steps after it.
    pub(super) fn resume(&mut self, record: &Record) -> anyhow::Result<()> {
        if self.chosen.is_some() {
            return Ok(());
        }
        let Some(source) = &record.source else {
            return Ok(());
        };
        let (path, info) = self.store.find(&self.cluster, source).with_context(|| {
            format!(
                "the snapshot {source} the interrupted recovery chose (--restart chooses again)"
            )
        })?;
        self.chosen = Some(Chosen { path, info });
        Ok(())
    }

    /// Step "choose": the host's named or newest snapshot of the
    /// cluster, else (or with `--from-store`) one fetched from the object
    /// store's `etcd` bucket and checked on the way. Returns the file name
    /// to record.
    pub(super) async fn choose(
        &mut self,
        ctx: &Context,
        workspace: &Workspace,
    ) -> anyhow::Result<String> {
        let (store, cluster) = (&self.store, self.cluster.as_str());
        let (name, from_store) = (self.choice.snapshot.as_deref(), self.choice.from_store);
        let local = if from_store {
            None
        } else {
            etcd::on_host(store, cluster, name)?
        };
        let (path, info) = match local {
            Some(found) => {
                crate::stdout::line(format_args!(
                    "      the host's {}: {}",
                    if name.is_some() { "named" } else { "newest" },
                    found.0.display()
                ))?;
                found
            }
            None => {
                let storage = crate::commands::storage::real(ctx, &workspace.resolved);
                let client = storage.host_client()?;
                let fetched = etcd::fetch(&client, store, cluster, name)
                    .await
                    .map_err(refusal)?;
                crate::stdout::line(format_args!(
                    "      fetched {} from the object store into {} (sha256 checked{})",
                    fetched.object,
                    fetched.path.display(),
                    if fetched.already_on_host {
                        "; the host had the same file"
                    } else {
                        ""
                    }
                ))?;
                (fetched.path, fetched.info)
            }
        };
        let file = info.file.clone();
        self.chosen = Some(Chosen { path, info });
        Ok(file)
    }

    /// Step "check": the chosen snapshot's own metadata names the cluster.
    pub(super) fn check(&self) -> anyhow::Result<()> {
        let (c, cluster) = (self.chosen()?, self.cluster.as_str());
        etcd::check_cluster(&c.path.with_extension("json"), &c.info, cluster).map_err(refusal)?;
        crate::stdout::line(format_args!(
            "      {} is {cluster}'s (revision {}, taken by {}, {} bytes)",
            c.info.file, c.info.revision, c.info.node, c.info.size
        ))?;
        Ok(())
    }
}
