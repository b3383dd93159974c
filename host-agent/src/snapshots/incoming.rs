//! One snapshot being received into the store.
//!
//! - The bytes go to a hidden, locked `.incoming-<pid>-<n>.part` file while
//!   their hash is computed. The lock (`flock`) marks it as in use: a crash
//!   releases it, so [`remove_leftovers_in`] can tell a dead reception's
//!   file from a live one, in this process or another (the daemon's sink
//!   and a CLI pull may write the same directory).
//! - The host names the snapshot from its own clock when the metadata
//!   arrived (`<YYYYMMDDTHHMMSSZ>-rev<N>.db`, then `…_02.db`, `…_03.db`,
//!   … if taken; `_` sorts after `.`, so names keep the receipt order).
//! - Committing never replaces anything: the metadata file is created with
//!   `O_EXCL` (which reserves the name), then the data file is hard-linked
//!   into place, which fails rather than overwrite. The metadata exists
//!   before the `.db` does, so a listed `.db` always has it.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use proto::snapshot::{TrailerHasher, Verified};
use proto::v1::{SnapshotMeta, SnapshotTrailer};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::store::{MetaFile, SnapshotInfo, SnapshotStore, unix};
use super::{SnapshotError, Source};

/// Names tried for one snapshot before giving up (`<base>.db`,
/// `<base>_02.db` … `<base>_99.db`): more snapshots of one revision in one
/// second means something is wrong.
pub const MAX_NAME_TRIES: usize = 99;

/// Mode of every file the store writes: a snapshot holds every Secret of
/// its cluster.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Makes part-file names unique within this process.
static PART_SEQ: AtomicU64 = AtomicU64::new(0);

/// Whether `name` is a partial file of a reception: ours
/// (`.incoming-…part`) or one of the store's earlier versions
/// (`.<name>.part-<pid>`).
fn is_part(name: &str) -> bool {
    name.starts_with('.') && name.contains(".part")
}

/// Removes every unlocked partial file in `dir`; returns how many.
pub fn remove_leftovers_in(dir: &Path) -> Result<usize, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(SnapshotError::io("listing", dir)(e)),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_part(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => match std::fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    tracing::info!(file = %path.display(), "removed a partial snapshot left by an interrupted reception");
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SnapshotError::io("removing", &path)(e)),
            },
            // A reception in progress holds it.
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                tracing::warn!(file = %path.display(), "cannot lock a partial snapshot: {e}");
            }
        }
    }
    Ok(removed)
}

/// Creates and locks a fresh part file in `dir`. A clean-up in another
/// process may remove the file between its creation and the lock; the
/// inode check notices and the next name is tried.
fn create_part(dir: &Path) -> Result<(PathBuf, File), SnapshotError> {
    let mut last = None;
    for _ in 0..3 {
        let n = PART_SEQ.fetch_add(1, Ordering::Relaxed);
        let part = dir.join(format!(".incoming-{}-{n}.part", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&part)
            .map_err(SnapshotError::io("creating", &part))?;
        file.lock().map_err(SnapshotError::io("locking", &part))?;
        let same = match (std::fs::symlink_metadata(&part), file.metadata()) {
            (Ok(on_disk), Ok(ours)) => on_disk.ino() == ours.ino() && on_disk.dev() == ours.dev(),
            _ => false,
        };
        if same {
            return Ok((part, file));
        }
        last = Some(part);
    }
    Err(SnapshotError::io(
        "keeping",
        &last.unwrap_or_else(|| dir.to_owned()),
    )(std::io::Error::other(
        "removed by a concurrent clean-up three times",
    )))
}

/// Starts a reception into `dir` (see [`SnapshotStore::begin`]).
pub(super) async fn begin(
    store: SnapshotStore,
    dir: PathBuf,
    source: Source,
    meta: SnapshotMeta,
) -> Result<Incoming, SnapshotError> {
    let received_at = store.now();
    let (part, file) = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(&dir)
                .map_err(SnapshotError::io("creating", &dir))?;
            let removed = remove_leftovers_in(&dir)?;
            if removed > 0 {
                tracing::info!(dir = %dir.display(), removed, "partial snapshots removed before a new one");
            }
            create_part(&dir)
        }
    })
    .await
    .map_err(|e| SnapshotError::io("preparing", &dir)(std::io::Error::other(e)))??;
    Ok(Incoming {
        dir,
        part,
        file: BufWriter::with_capacity(fsio::BUFFER_BYTES, tokio::fs::File::from_std(file)),
        hasher: TrailerHasher::new(),
        meta,
        source,
        received_at,
        committed: false,
        store,
    })
}

/// A snapshot being received; its part file is removed unless committed.
pub struct Incoming {
    dir: PathBuf,
    part: PathBuf,
    file: BufWriter<tokio::fs::File>,
    hasher: TrailerHasher,
    meta: SnapshotMeta,
    source: Source,
    received_at: SystemTime,
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

    /// The metadata as the host records it: cluster and node from the
    /// source, the time never later than the receipt.
    fn info(&self, file: &str, verified: &Verified) -> MetaFile {
        let received = unix(self.received_at);
        let claimed = self.meta.taken_at.map(|t| t.seconds).filter(|s| *s > 0);
        let taken = claimed.map_or(received, |c| c.min(received));
        MetaFile {
            info: SnapshotInfo {
                cluster: self.source.cluster.clone(),
                file: file.to_owned(),
                node: self.source.node.clone(),
                revision: self.meta.revision,
                revision_exact: self.meta.revision_exact,
                etcd_version: self.meta.etcd_version.clone(),
                taken_at: proto::snapshot::utc_stamp(taken.max(0) as u64),
                taken_at_unix: taken,
                sha256: verified.sha256_hex(),
                size: verified.size,
                origin: self.meta.origin.clone(),
            },
            received_at_unix: Some(received),
            received_at_nanos: self
                .received_at
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.subsec_nanos()),
            claimed_taken_at_unix: claimed,
        }
    }

    /// Verifies against `trailer`, makes the file durable, and stores it
    /// under a new name with its metadata; a snapshot already stored for
    /// the cluster (same sha256) is acknowledged instead.
    pub async fn commit(mut self, trailer: &SnapshotTrailer) -> Result<Stored, SnapshotError> {
        let verified: Verified = self.hasher.clone().finish()?;
        verified.matches(&trailer.sha256, trailer.size)?;
        let sha256 = verified.sha256_hex();
        if let Some(existing) = self
            .store
            .list(&self.source.cluster)?
            .into_iter()
            .find(|i| i.sha256 == sha256)
        {
            let path = self.dir.join(&existing.file);
            return Ok(Stored {
                info: existing,
                path,
                already_stored: true,
            });
        }
        fsio::nonblocking::flush_and_sync(&mut self.file, &self.part)
            .await
            .map_err(|e| SnapshotError::io(e.action, &e.path)(e.source))?;
        let base = proto::snapshot::file_name(self.received_at, self.meta.revision);
        let stem = base.trim_end_matches(".db").to_owned();
        let candidates = std::iter::once(base.clone())
            .chain((2..=MAX_NAME_TRIES).map(|i| format!("{stem}_{i:02}.db")));
        for name in candidates {
            let meta = self.info(&name, &verified);
            let (dir, part) = (self.dir.clone(), self.part.clone());
            let placed = tokio::task::spawn_blocking(move || place(&dir, &part, &meta))
                .await
                .map_err(|e| {
                    SnapshotError::io("storing", &self.part)(std::io::Error::other(e))
                })??;
            if let Some(path) = placed {
                self.committed = true;
                let _ = std::fs::remove_file(&self.part);
                // Best effort: the snapshot is linked and durable already.
                let _ = fsio::sync_dir(&self.dir);
                return Ok(Stored {
                    info: self.info(&name, &verified).info,
                    path,
                    already_stored: false,
                });
            }
        }
        Err(SnapshotError::NameTaken {
            dir: self.dir.clone(),
            base,
            tries: MAX_NAME_TRIES,
        })
    }
}

/// Stores `part` as `meta.info.file` unless that name (or its metadata)
/// exists: `Ok(None)` means "taken, try another name".
fn place(dir: &Path, part: &Path, meta: &MetaFile) -> Result<Option<PathBuf>, SnapshotError> {
    let db = dir.join(&meta.info.file);
    let json = db.with_extension("json");
    if std::fs::symlink_metadata(&db).is_ok() {
        return Ok(None);
    }
    let mut reserved = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&json)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(SnapshotError::io("creating", &json)(e)),
    };
    let undo = |e: SnapshotError| {
        let _ = std::fs::remove_file(&json);
        e
    };
    let text = serde_json::to_vec_pretty(meta).map_err(|e| {
        undo(SnapshotError::io("encoding metadata for", &db)(
            std::io::Error::other(e),
        ))
    })?;
    reserved
        .write_all(&text)
        .and_then(|()| reserved.sync_all())
        .map_err(|e| undo(SnapshotError::io("writing", &json)(e)))?;
    match std::fs::hard_link(part, &db) {
        Ok(()) => Ok(Some(db)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&json);
            Ok(None)
        }
        Err(e) => Err(undo(SnapshotError::io("linking", &db)(e))),
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}
