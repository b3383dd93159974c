//! `snapshots/<cluster>/<YYYYMMDDTHHMMSSZ>-rev<N>.db` with its metadata in
//! `<same>.json`. A snapshot is received into a hidden `.part` file while
//! its hash is computed, fsynced, then renamed; its metadata is written
//! atomically *before* the rename, so a listed `.db` always has metadata
//! and a partial file never carries a final name.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::snapshot::{TrailerHasher, Verified};
use proto::v1::{SnapshotMeta, SnapshotTrailer};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::SnapshotError;
use crate::fsutil::write_atomic;

/// Default `--keep`.
pub const DEFAULT_KEEP: usize = 7;

/// What the host records about a stored snapshot (the `.json` file; also
/// `hostctl etcd list -o json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub cluster: String,
    /// The file name under the cluster's directory.
    pub file: String,
    pub node: String,
    pub revision: i64,
    pub revision_exact: bool,
    pub etcd_version: String,
    /// `YYYYMMDDTHHMMSSZ`.
    pub taken_at: String,
    pub taken_at_unix: i64,
    pub sha256: String,
    pub size: u64,
    /// "on-demand" or "scheduled".
    pub origin: String,
}

impl SnapshotInfo {
    /// The metadata as sent to a node for a restore.
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
            origin: self.origin.clone(),
        }
    }

    /// Age relative to `now`.
    pub fn age(&self, now: SystemTime) -> Duration {
        let taken = UNIX_EPOCH + Duration::from_secs(self.taken_at_unix.max(0) as u64);
        now.duration_since(taken).unwrap_or(Duration::ZERO)
    }
}

/// The snapshot directory of one `$HOSTCTL_HOME`.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    root: PathBuf,
}

/// Cluster names become directory names: refuse anything that could
/// escape the store.
fn checked(cluster: &str) -> Result<&str, SnapshotError> {
    let ok = !cluster.is_empty()
        && cluster
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        && !cluster.starts_with('.');
    if ok {
        Ok(cluster)
    } else {
        Err(SnapshotError::Protocol(format!(
            "invalid cluster name {cluster:?}"
        )))
    }
}

impl SnapshotStore {
    /// The store under `home` (`<home>/snapshots`).
    pub fn new(home: &Path) -> Self {
        SnapshotStore {
            root: home.join("snapshots"),
        }
    }

    /// `snapshots/<cluster>`.
    pub fn cluster_dir(&self, cluster: &str) -> Result<PathBuf, SnapshotError> {
        Ok(self.root.join(checked(cluster)?))
    }

    /// Starts receiving a snapshot described by `meta`.
    pub async fn begin(&self, meta: SnapshotMeta) -> Result<Incoming, SnapshotError> {
        let dir = self.cluster_dir(&meta.cluster)?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(SnapshotError::io("creating", &dir))?;
        let taken_at_unix = meta.taken_at.map(|t| t.seconds).unwrap_or(0);
        let name = proto::snapshot::file_name(
            UNIX_EPOCH + Duration::from_secs(taken_at_unix.max(0) as u64),
            meta.revision,
        );
        let part = dir.join(format!(".{name}.part-{}", std::process::id()));
        let file = tokio::fs::File::create(&part)
            .await
            .map_err(SnapshotError::io("creating", &part))?;
        Ok(Incoming {
            target: dir.join(&name),
            part,
            file: BufWriter::with_capacity(256 * 1024, file),
            hasher: TrailerHasher::new(),
            meta,
            name,
            taken_at_unix,
            committed: false,
            store: self.clone(),
        })
    }

    /// The snapshots of `cluster`, oldest first.
    pub fn list(&self, cluster: &str) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let dir = self.cluster_dir(cluster)?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SnapshotError::io("listing", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".db") {
                continue;
            }
            if let Ok(text) = std::fs::read(path.with_extension("json"))
                && let Ok(info) = serde_json::from_slice::<SnapshotInfo>(&text)
            {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(out)
    }

    /// Every cluster that has a snapshot directory, sorted.
    pub fn clusters(&self) -> Result<Vec<String>, SnapshotError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SnapshotError::io("listing", &self.root)(e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| checked(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The path of snapshot `name` (a file name, or a unique prefix of one).
    pub fn find(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<(PathBuf, SnapshotInfo), SnapshotError> {
        let dir = self.cluster_dir(cluster)?;
        let matches: Vec<SnapshotInfo> = self
            .list(cluster)?
            .into_iter()
            .filter(|i| i.file == name || i.file.starts_with(name))
            .collect();
        match matches.as_slice() {
            [one] => Ok((dir.join(&one.file), one.clone())),
            _ => Err(SnapshotError::NotFound {
                cluster: cluster.to_owned(),
                name: name.to_owned(),
            }),
        }
    }

    /// Deletes all but the newest `keep` snapshots of `cluster`; returns
    /// the deleted file names.
    pub fn prune(&self, cluster: &str, keep: usize) -> Result<Vec<String>, SnapshotError> {
        let dir = self.cluster_dir(cluster)?;
        let list = self.list(cluster)?;
        let excess = list.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for info in list.into_iter().take(excess) {
            let db = dir.join(&info.file);
            // The .db first: a crash in between leaves metadata without a
            // file, which `list` ignores.
            for path in [db.clone(), db.with_extension("json")] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(SnapshotError::io("removing", &path)(e)),
                }
            }
            removed.push(info.file);
        }
        Ok(removed)
    }
}

/// A snapshot being received; its `.part` file is removed unless committed.
pub struct Incoming {
    target: PathBuf,
    part: PathBuf,
    file: BufWriter<tokio::fs::File>,
    hasher: TrailerHasher,
    meta: SnapshotMeta,
    name: String,
    taken_at_unix: i64,
    committed: bool,
    store: SnapshotStore,
}

/// The result of storing.
#[derive(Debug, Clone)]
pub struct Stored {
    pub info: SnapshotInfo,
    pub path: PathBuf,
    /// The same snapshot (cluster, sha256) was already stored.
    pub already_stored: bool,
}

impl Incoming {
    /// Appends data.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        self.hasher.update(data);
        self.file
            .write_all(data)
            .await
            .map_err(SnapshotError::io("writing", &self.part))
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.hasher.size()
    }

    /// Verifies against `trailer`, makes the file durable, writes its
    /// metadata and renames it into place.
    pub async fn commit(mut self, trailer: &SnapshotTrailer) -> Result<Stored, SnapshotError> {
        let verified: Verified = self.hasher.clone().finish()?;
        verified.matches(&trailer.sha256, trailer.size)?;
        let info = SnapshotInfo {
            cluster: self.meta.cluster.clone(),
            file: self.name.clone(),
            node: self.meta.node.clone(),
            revision: self.meta.revision,
            revision_exact: self.meta.revision_exact,
            etcd_version: self.meta.etcd_version.clone(),
            taken_at: proto::snapshot::utc_stamp(self.taken_at_unix.max(0) as u64),
            taken_at_unix: self.taken_at_unix,
            sha256: verified.sha256_hex(),
            size: verified.size,
            origin: self.meta.origin.clone(),
        };
        if let Some(existing) = self
            .store
            .list(&info.cluster)?
            .into_iter()
            .find(|i| i.sha256 == info.sha256)
        {
            let path = self
                .store
                .cluster_dir(&existing.cluster)?
                .join(&existing.file);
            return Ok(Stored {
                info: existing,
                path,
                already_stored: true,
            });
        }
        let io = |what| SnapshotError::io(what, &self.part);
        self.file.flush().await.map_err(io("flushing"))?;
        self.file
            .get_ref()
            .sync_all()
            .await
            .map_err(io("syncing"))?;
        let json = serde_json::to_vec_pretty(&info).map_err(|e| SnapshotError::Io {
            what: "encoding metadata for",
            path: self.target.clone(),
            source: std::io::Error::other(e),
        })?;
        let meta_path = self.target.with_extension("json");
        write_atomic(&meta_path, &json, 0o600).map_err(|e| SnapshotError::Io {
            what: "writing",
            path: e.path,
            source: e.source,
        })?;
        tokio::fs::rename(&self.part, &self.target)
            .await
            .map_err(io("renaming"))?;
        self.committed = true;
        if let Some(dir) = self.target.parent()
            && let Ok(d) = tokio::fs::File::open(dir).await
        {
            let _ = d.sync_all().await;
        }
        Ok(Stored {
            info,
            path: self.target.clone(),
            already_stored: false,
        })
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}
