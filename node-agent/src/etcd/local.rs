//! Snapshots the schedule took, kept on the node: `<dir>/<name>.db` plus
//! `<name>.json` ([`LocalMeta`]). The newest `keep` are kept whether
//! shipped or not, so the node can restore without the host and an outage
//! longer than `keep` intervals loses only the oldest unshipped ones.
//!
//! The schedule is the only writer of the directory and takes one snapshot
//! at a time, so anything still staged when a snapshot starts (or when the
//! schedule starts) was left by a crash or a kill — a partial `.part`
//! file can be as large as the database — and is removed
//! ([`LocalSnapshots::remove_leftovers`]).

use std::path::{Path, PathBuf};

use proto::snapshot::Verified;
use proto::v1::SnapshotMeta;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::file::{PartFile, SNAPSHOT_MODE};
use super::snapshot::{self, ORIGIN_SCHEDULED, Taker};
use super::{EtcdError, EtcdTarget};

/// How staged (not yet named) snapshot files start.
const STAGING_PREFIX: &str = ".incoming-";

/// What the node records next to each local snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalMeta {
    pub cluster: String,
    pub node: String,
    pub revision: i64,
    pub revision_exact: bool,
    pub etcd_version: String,
    /// Seconds since the epoch (UTC).
    pub taken_at_unix: i64,
    pub sha256: String,
    pub size: u64,
    /// The host acknowledged it.
    pub shipped: bool,
}

impl LocalMeta {
    /// The wire form, for shipping.
    pub fn to_proto(&self) -> SnapshotMeta {
        SnapshotMeta {
            cluster: self.cluster.clone(),
            node: self.node.clone(),
            revision: self.revision,
            revision_exact: self.revision_exact,
            etcd_version: self.etcd_version.clone(),
            taken_at: Some(proto::Timestamp {
                seconds: self.taken_at_unix,
                nanos: 0,
            }),
            origin: ORIGIN_SCHEDULED.to_owned(),
        }
    }
}

/// One local snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEntry {
    pub db: PathBuf,
    pub meta: LocalMeta,
}

/// The node's snapshot directory.
#[derive(Debug, Clone)]
pub struct LocalSnapshots {
    dir: PathBuf,
    keep: usize,
}

fn meta_path(db: &Path) -> PathBuf {
    db.with_extension("json")
}

impl LocalSnapshots {
    /// Snapshots under `dir`, keeping the newest `keep` (at least one).
    pub fn new(dir: PathBuf, keep: usize) -> Self {
        LocalSnapshots {
            dir,
            keep: keep.max(1),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes what interrupted snapshots left in the directory: staged
    /// `.incoming-*` files (partial or verified but not yet named) and
    /// half-written metadata ([`fsio::is_temp_name`], and `*.json.tmp` from
    /// agents before it). Returns how many files.
    pub async fn remove_leftovers(&self) -> Result<usize, EtcdError> {
        let mut dir = match tokio::fs::read_dir(&self.dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(EtcdError::io("listing", &self.dir)(e)),
        };
        let mut removed = 0;
        while let Some(e) = dir
            .next_entry()
            .await
            .map_err(EtcdError::io("listing", &self.dir))?
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let leftover = name.starts_with(STAGING_PREFIX)
                || fsio::is_temp_name(&name)
                || name.ends_with(".json.tmp");
            if !leftover || !e.file_type().await.is_ok_and(|t| t.is_file()) {
                continue;
            }
            let path = e.path();
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {
                    removed += 1;
                    tracing::info!(file = %path.display(), "removed a leftover of an interrupted snapshot");
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(EtcdError::io("removing", &path)(err)),
            }
        }
        Ok(removed)
    }

    /// Takes a snapshot into the directory, then prunes. Leftovers of an
    /// interrupted earlier snapshot are removed first.
    pub async fn save(&self, target: &EtcdTarget, taker: &Taker) -> Result<LocalEntry, EtcdError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(EtcdError::io("creating", &self.dir))?;
        self.remove_leftovers().await?;
        // The name needs the revision, known only once the stream started:
        // receive under a temporary name, rename when verified.
        let staging = self
            .dir
            .join(format!("{STAGING_PREFIX}{}.db", std::process::id()));
        let (tx, mut rx) = mpsc::channel::<proto::v1::SnapshotChunk>(4);
        let consumer = async {
            let mut part = PartFile::create(&staging).await?;
            while let Some(c) = rx.recv().await {
                if let Some(proto::v1::snapshot_chunk::Kind::Data(d)) = c.kind {
                    part.write(&d).await?;
                }
            }
            Ok::<_, EtcdError>(part)
        };
        let (produced, consumed) = tokio::join!(
            async move {
                let r = snapshot::take(target, taker, ORIGIN_SCHEDULED, &tx).await;
                drop(tx);
                r
            },
            consumer
        );
        let (meta, _) = produced?;
        let verified = consumed?.commit(None).await?;
        let entry = self.adopt(&staging, &meta, &verified).await?;
        self.prune().await?;
        Ok(entry)
    }

    async fn adopt(
        &self,
        staging: &Path,
        meta: &SnapshotMeta,
        verified: &Verified,
    ) -> Result<LocalEntry, EtcdError> {
        let taken_at_unix = meta.taken_at.map(|t| t.seconds).unwrap_or(0);
        let name = proto::snapshot::file_name(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(taken_at_unix.max(0) as u64),
            meta.revision,
        );
        let db = self.dir.join(name);
        let local = LocalMeta {
            cluster: meta.cluster.clone(),
            node: meta.node.clone(),
            revision: meta.revision,
            revision_exact: meta.revision_exact,
            etcd_version: meta.etcd_version.clone(),
            taken_at_unix,
            sha256: verified.sha256_hex(),
            size: verified.size,
            shipped: false,
        };
        write_meta(&db, &local).await?;
        fsio::nonblocking::rename(staging, &db).await?;
        Ok(LocalEntry { db, meta: local })
    }

    /// Every complete local snapshot, oldest first.
    pub async fn list(&self) -> Result<Vec<LocalEntry>, EtcdError> {
        let mut entries = Vec::new();
        let mut dir = match tokio::fs::read_dir(&self.dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
            Err(e) => return Err(EtcdError::io("listing", &self.dir)(e)),
        };
        while let Some(e) = dir
            .next_entry()
            .await
            .map_err(EtcdError::io("listing", &self.dir))?
        {
            let db = e.path();
            let is_db = db.extension().is_some_and(|x| x == "db")
                && !db
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_db {
                continue;
            }
            // A .db without readable metadata is not ours (or half-written
            // metadata from a crash): skip it rather than ship guesses.
            if let Ok(text) = tokio::fs::read(meta_path(&db)).await
                && let Ok(meta) = serde_json::from_slice::<LocalMeta>(&text)
            {
                entries.push(LocalEntry { db, meta });
            }
        }
        entries.sort_by(|a, b| a.db.cmp(&b.db));
        Ok(entries)
    }

    /// Local snapshots the host has not acknowledged, oldest first.
    pub async fn pending(&self) -> Result<Vec<LocalEntry>, EtcdError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|e| !e.meta.shipped)
            .collect())
    }

    /// Records that the host stored `entry`.
    pub async fn mark_shipped(&self, entry: &LocalEntry) -> Result<(), EtcdError> {
        let mut meta = entry.meta.clone();
        meta.shipped = true;
        write_meta(&entry.db, &meta).await
    }

    /// Deletes all but the newest `keep` snapshots.
    pub async fn prune(&self) -> Result<(), EtcdError> {
        let entries = self.list().await?;
        let excess = entries.len().saturating_sub(self.keep);
        for e in entries.into_iter().take(excess) {
            for path in [meta_path(&e.db), e.db.clone()] {
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(EtcdError::io("removing", &path)(err)),
                }
            }
        }
        Ok(())
    }
}

/// Writes the metadata atomically ([`fsio::nonblocking::write_json_atomic`]),
/// with the mode of the snapshot it describes.
async fn write_meta(db: &Path, meta: &LocalMeta) -> Result<(), EtcdError> {
    fsio::nonblocking::write_json_atomic(&meta_path(db), meta, SNAPSHOT_MODE)
        .await
        .map_err(|e| match e {
            fsio::JsonError::Write(e) => e.into(),
            fsio::JsonError::Encode { path, source } => {
                EtcdError::io("encoding", &path)(std::io::Error::other(source))
            }
        })
}
