//! `snapshots/<cluster>/<YYYYMMDDTHHMMSSZ>-rev<N>.db` with its metadata in
//! `<same>.json`. The host names every snapshot from *its own* clock at
//! receipt (the node's claimed time is recorded, never trusted), keeps
//! that receipt time in the metadata, and orders, prunes and judges the
//! RPO by it, so a node with a wrong or lying clock cannot make `--keep`
//! delete the snapshot just taken or hide an overdue one. Receiving and
//! naming are in [`super::incoming`]: a partial file never carries a final
//! name and a stored snapshot is never replaced.
//!
//! Metadata written before receipt times were recorded stays readable: its
//! receipt time is taken from the metadata file's modification time (the
//! host wrote it when it received the snapshot).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certs::Clock;
use proto::v1::SnapshotMeta;
use serde::{Deserialize, Serialize};

use super::incoming;
pub use super::incoming::{Incoming, Stored};
use super::{SnapshotError, Source};

/// Default `--keep`.
pub const DEFAULT_KEEP: usize = 7;

/// What the host records about a stored snapshot (the `.json` file; also
/// `hostctl etcd list -o json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub cluster: String,
    /// The file name under the cluster's directory (chosen by the host).
    pub file: String,
    pub node: String,
    pub revision: i64,
    pub revision_exact: bool,
    pub etcd_version: String,
    /// `YYYYMMDDTHHMMSSZ` of `taken_at_unix`.
    pub taken_at: String,
    /// When it was taken: the node's claim, but never later than the host
    /// received it (a claim in the future is replaced by the receipt time;
    /// an honest late upload keeps its earlier time, so the RPO is judged
    /// conservatively).
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

/// The `.json` file: [`SnapshotInfo`] plus what only the host knows. The
/// extra fields are absent in files written before they existed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MetaFile {
    #[serde(flatten)]
    pub info: SnapshotInfo,
    /// The host's clock when the snapshot arrived (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at_unix: Option<i64>,
    /// Its sub-second part, so snapshots received within one second keep
    /// their order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at_nanos: Option<u32>,
    /// The time the node claimed, kept for the record only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_taken_at_unix: Option<i64>,
}

/// A stored snapshot with its host receipt time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub info: SnapshotInfo,
    /// The host's clock when it arrived; what retention orders by.
    pub received_at_unix: i64,
    /// Its sub-second part (0 for metadata from before it was kept).
    pub received_at_nanos: u32,
    /// The time the node claimed (`None` for metadata from before it was kept).
    pub claimed_taken_at_unix: Option<i64>,
}

/// Seconds since the epoch, 0 before it.
pub(crate) fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The snapshot directory of one `$HOSTCTL_HOME`, and the clock it stamps
/// receipts with (injectable so tests need not wait).
#[derive(Clone)]
pub struct SnapshotStore {
    root: PathBuf,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
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

/// Reads one metadata file; `None` when it is missing or not ours.
fn read_meta(json: &Path) -> Option<StoredEntry> {
    let text = std::fs::read(json).ok()?;
    let meta: MetaFile = serde_json::from_slice(&text).ok()?;
    let received = meta.received_at_unix.unwrap_or_else(|| {
        // Written before receipt times were kept: the host wrote the file
        // when the snapshot arrived, so its mtime is the host's receipt.
        std::fs::metadata(json)
            .and_then(|m| m.modified())
            .map(unix)
            .unwrap_or(meta.info.taken_at_unix)
    });
    let mut info = meta.info;
    if info.taken_at_unix > received {
        info.taken_at_unix = received;
        info.taken_at = proto::snapshot::utc_stamp(received.max(0) as u64);
    }
    Some(StoredEntry {
        info,
        received_at_unix: received,
        received_at_nanos: meta.received_at_nanos.unwrap_or(0),
        claimed_taken_at_unix: meta.claimed_taken_at_unix,
    })
}

impl SnapshotStore {
    /// The store under `home` (`<home>/snapshots`), stamping with the
    /// system clock.
    pub fn new(home: &Path) -> Self {
        Self::with_clock(home, Arc::new(certs::SystemClock))
    }

    /// The store under `home` stamping receipts with `clock`.
    pub fn with_clock(home: &Path, clock: Arc<dyn Clock>) -> Self {
        SnapshotStore {
            root: home.join("snapshots"),
            clock,
        }
    }

    /// The host's time now, by the store's clock.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// `snapshots/<cluster>`.
    pub fn cluster_dir(&self, cluster: &str) -> Result<PathBuf, SnapshotError> {
        Ok(self.root.join(checked(cluster)?))
    }

    /// Starts receiving a snapshot from `source` described by `meta`
    /// (whose cluster and node the caller has checked against `source`).
    /// Leftovers of crashed receptions in the cluster's directory are
    /// removed first.
    pub async fn begin(
        &self,
        source: &Source,
        meta: SnapshotMeta,
    ) -> Result<Incoming, SnapshotError> {
        let dir = self.cluster_dir(&source.cluster)?;
        incoming::begin(self.clone(), dir, source.clone(), meta).await
    }

    /// The snapshots of `cluster`, oldest received first.
    pub fn list(&self, cluster: &str) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        Ok(self.entries(cluster)?.into_iter().map(|e| e.info).collect())
    }

    /// The snapshots of `cluster` with their receipt times, oldest received
    /// first.
    pub fn entries(&self, cluster: &str) -> Result<Vec<StoredEntry>, SnapshotError> {
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
            if let Some(stored) = read_meta(&path.with_extension("json"))
                && stored.info.file == name
            {
                out.push(stored);
            }
        }
        // Ties (one host second, metadata without nanoseconds) by name:
        // a second snapshot's `_02` suffix sorts after the first's `.db`.
        out.sort_by(|a, b| {
            let key = |e: &StoredEntry| (e.received_at_unix, e.received_at_nanos);
            key(a)
                .cmp(&key(b))
                .then_with(|| a.info.file.cmp(&b.info.file))
        });
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

    /// Deletes all but the newest `keep` snapshots of `cluster` — newest by
    /// the host's receipt time, never by the node's claim — and returns the
    /// deleted file names.
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

    /// Removes partial files that crashed receptions left in every
    /// cluster's directory (the daemon calls this when it starts); a
    /// reception still running — in this process or another — holds a lock
    /// on its file and is left alone. Returns how many were removed.
    pub fn remove_leftovers(&self) -> Result<usize, SnapshotError> {
        let mut removed = 0;
        for cluster in self.clusters()? {
            removed += incoming::remove_leftovers_in(&self.cluster_dir(&cluster)?)?;
        }
        Ok(removed)
    }
}
