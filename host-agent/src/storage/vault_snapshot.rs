//! mgmt's Vault snapshotted off the cluster, and put back (issue 20,
//! docs/backup.md): losing mgmt loses Vault's raft storage with it, so a
//! snapshot is only worth something once it is on the host's store.
//!
//! [`take`] streams `sys/storage/raft/snapshot` to
//! `$HOSTCTL_HOME/vault-snapshots/<stamp>.snap` (0700 directory, 0600
//! file, at most [`MAX_SNAPSHOT`]; hashed while it streams), uploads it to
//! the `vault` bucket as `mgmt/<stamp>.snap` with the checked upload of
//! [`super::offsite`] (the stored copy must carry the digest hashed while
//! the snapshot streamed in), and keeps the newest few copies on the host.
//!
//! [`restore`] fetches a named or the newest object, holds it to its
//! stored digest *before* anything goes to Vault (a damaged copy never
//! reaches `snapshot-force`), then streams it to `snapshot-force`. After a
//! restore Vault carries the snapshot's keyring: it unseals with the
//! unseal key of the Vault the snapshot came from.

use super::error::StorageError;
use super::offsite;
use super::plan::VAULT_BUCKET;
use super::s3::S3;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use vault::VaultClient;

/// What a snapshot may be, in bytes: far above a lab Vault's few MiB, and
/// a bound on what a misbehaving server can make the host write.
pub const MAX_SNAPSHOT: u64 = 1 << 30;
/// How many snapshots stay on the host (the bucket keeps all of them).
pub const KEEP_LOCAL: usize = 7;
/// The directory under `$HOSTCTL_HOME`.
pub const DIR: &str = "vault-snapshots";
/// The objects' prefix in the `vault` bucket: the cluster whose Vault it is.
pub const PREFIX: &str = "mgmt/";
/// The snapshots' file extension, on the host and in the bucket.
pub const EXTENSION: &str = ".snap";

/// Why a snapshot was not taken, stored or restored.
#[derive(Debug, thiserror::Error)]
pub enum VaultSnapshotError {
    #[error("Vault: {0}")]
    Vault(#[from] vault::VaultError),
    #[error("the object store: {0}")]
    Storage(#[from] StorageError),
    #[error(
        "no Vault snapshot in the store's `vault` bucket under {PREFIX}; take one with `hostctl vault snapshot`"
    )]
    None,
    #[error(
        "{key}: uploaded with sha256 {stored}, but the snapshot streamed from Vault hashed to {taken}; \
         the host's file changed under hostctl, take the snapshot again"
    )]
    Changed {
        key: String,
        taken: String,
        stored: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VaultSnapshotError + use<> {
    let path = path.to_owned();
    move |source| VaultSnapshotError::Io { path, source }
}

/// One snapshot in the store (and on the host for [`take`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// The object key, `mgmt/<stamp>.snap`.
    pub key: String,
    pub size: u64,
    pub sha256: String,
    /// The host's copy (`take`) or the verified download that was sent
    /// (`restore`, removed afterwards).
    pub file: PathBuf,
    /// Older host copies removed to keep [`KEEP_LOCAL`] (`take` only).
    pub pruned: Vec<PathBuf>,
}

/// `$HOSTCTL_HOME/vault-snapshots`.
pub fn dir(home: &Path) -> PathBuf {
    home.join(DIR)
}

/// `<YYYYMMDDTHHMMSSZ>.snap` of `at` (UTC): names sort by time.
pub fn file_name(at: jiff::Timestamp) -> String {
    format!(
        "{}{EXTENSION}",
        at.to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y%m%dT%H%M%SZ")
    )
}

/// The object key of a file name, or of a name given as a key already.
pub fn object_key(name: &str) -> String {
    if name.starts_with(PREFIX) {
        name.to_owned()
    } else {
        format!("{PREFIX}{name}")
    }
}

fn ensure_dir(dir: &Path) -> Result<(), VaultSnapshotError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

/// Takes a snapshot with `vault` (a token allowed to read
/// `sys/storage/raft/snapshot`), stores it in the bucket, keeps the newest
/// `keep` on the host. A refused or broken snapshot leaves no file.
pub async fn take(
    vault: &VaultClient,
    s3: &S3,
    home: &Path,
    at: jiff::Timestamp,
    keep: usize,
) -> Result<Snapshot, VaultSnapshotError> {
    let dir = dir(home);
    ensure_dir(&dir)?;
    let name = file_name(at);
    let file = dir.join(&name);
    let saved = vault::snapshot::save(vault, &file, MAX_SNAPSHOT).await?;
    // A host copy an earlier run could not upload is uploaded now (a
    // no-op for those already stored), so a failed upload is finished by
    // the next snapshot. Before the new one: the store dates objects by
    // upload, and `storage status` must see the new one as the newest.
    for earlier in local(&dir)? {
        if earlier != file {
            let name = earlier
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            offsite::upload_file(s3, VAULT_BUCKET, &object_key(name), &earlier).await?;
        }
    }
    let key = object_key(&name);
    let stored = offsite::upload_file(s3, VAULT_BUCKET, &key, &file).await?;
    if stored.sha256 != saved.sha256 {
        return Err(VaultSnapshotError::Changed {
            key,
            taken: saved.sha256,
            stored: stored.sha256,
        });
    }
    let pruned = prune(&dir, keep)?;
    Ok(Snapshot {
        key,
        size: saved.size,
        sha256: saved.sha256,
        file,
        pruned,
    })
}

/// How old the newest host copy may be before the daemon takes another:
/// under the 24 h RPO, with an hour for a failed attempt to be retried.
pub const SCHEDULE_EVERY: std::time::Duration = std::time::Duration::from_secs(23 * 3600);

/// Whether a scheduled snapshot is due at `now`: no host copy yet, or the
/// newest (by its name's UTC stamp) is [`SCHEDULE_EVERY`] old.
pub fn due(home: &Path, now: jiff::Timestamp) -> bool {
    let newest = local(&dir(home))
        .ok()
        .and_then(|files| files.last().cloned());
    let stamp = newest.as_ref().and_then(|p| {
        let name = p.file_name()?.to_str()?.strip_suffix(EXTENSION)?;
        jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", name)
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    });
    match stamp {
        None => true,
        Some(at) => now.duration_since(at).as_secs() >= SCHEDULE_EVERY.as_secs() as i64,
    }
}

/// The scheduled snapshot: [`take`] when [`due`], else nothing.
pub async fn take_if_due(
    vault: &VaultClient,
    s3: &S3,
    home: &Path,
    now: jiff::Timestamp,
) -> Result<Option<Snapshot>, VaultSnapshotError> {
    if !due(home, now) {
        return Ok(None);
    }
    take(vault, s3, home, now, KEEP_LOCAL).await.map(Some)
}

/// Removes all but the newest `keep` snapshots in `dir` (by name, which
/// is by time); returns what it removed.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, VaultSnapshotError> {
    let mut files = local(dir)?;
    let excess = files.len().saturating_sub(keep);
    let old: Vec<PathBuf> = files.drain(..excess).collect();
    for path in &old {
        std::fs::remove_file(path).map_err(io(path))?;
    }
    Ok(old)
}

/// The snapshots on the host, oldest first (names sort by time).
fn local(dir: &Path) -> Result<Vec<PathBuf>, VaultSnapshotError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(EXTENSION))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The snapshots in the bucket, oldest first (keys sort by time).
pub async fn list(s3: &S3) -> Result<Vec<super::s3::Entry>, VaultSnapshotError> {
    let mut entries: Vec<_> = s3
        .list(VAULT_BUCKET, PREFIX)
        .await?
        .into_iter()
        .filter(|e| e.key.ends_with(EXTENSION))
        .collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(entries)
}

/// Restores `name` (a file name or key; `None`: the newest) into Vault
/// with `snapshot-force`. The download is checked against its stored
/// digest first; nothing reaches Vault unless it matches.
pub async fn restore(
    vault: &VaultClient,
    s3: &S3,
    home: &Path,
    name: Option<&str>,
) -> Result<Snapshot, VaultSnapshotError> {
    let key = match name {
        Some(n) => object_key(n),
        None => list(s3).await?.pop().ok_or(VaultSnapshotError::None)?.key,
    };
    let dir = dir(home);
    ensure_dir(&dir)?;
    let base = key.trim_start_matches(PREFIX).replace('/', "_");
    // Not the host's copy's name: a refused download is deleted, and the
    // host's copy must survive that.
    let file = dir.join(format!("{base}.fetched"));
    let fetched = offsite::download_verified(s3, VAULT_BUCKET, &key, &file, MAX_SNAPSHOT).await;
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            // A transfer broken midway leaves its partial download.
            let _ = std::fs::remove_file(file.with_extension("download"));
            return Err(e.into());
        }
    };
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io(&file))?;
    let restored = vault::snapshot::restore(vault, &file).await;
    let _ = std::fs::remove_file(&file);
    restored?;
    Ok(Snapshot {
        key,
        size: fetched.size,
        sha256: fetched.sha256,
        file,
        pruned: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_snapshot_is_due_without_a_copy_or_after_23_hours() {
        let home = tempfile::tempdir().unwrap();
        let now: jiff::Timestamp = "2026-12-03T12:00:00Z".parse().unwrap();
        assert!(due(home.path(), now), "no copy yet");
        std::fs::create_dir_all(dir(home.path())).unwrap();
        let hour = jiff::SignedDuration::from_hours(1);
        let at = |h: i64| now.checked_sub(hour * h as i32).unwrap();
        std::fs::write(dir(home.path()).join(file_name(at(30))), b"old").unwrap();
        assert!(due(home.path(), now), "30 h old");
        std::fs::write(dir(home.path()).join(file_name(at(2))), b"new").unwrap();
        assert!(!due(home.path(), now), "the newest is 2 h old");
        assert!(
            due(home.path(), now.checked_add(hour * 21).unwrap()),
            "23 h later"
        );
    }

    #[test]
    fn names_are_utc_stamps_that_sort_by_time_and_keys_carry_the_cluster() {
        let at: jiff::Timestamp = "2026-12-03T19:05:09Z".parse().unwrap();
        assert_eq!(file_name(at), "20261203T190509Z.snap");
        assert_eq!(
            object_key("20261203T190509Z.snap"),
            "mgmt/20261203T190509Z.snap"
        );
        assert_eq!(object_key("mgmt/x.snap"), "mgmt/x.snap");
        let later: jiff::Timestamp = "2026-12-10T01:00:00Z".parse().unwrap();
        assert!(file_name(at) < file_name(later));
    }

    #[test]
    fn pruning_keeps_the_newest_snapshots_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "20261201T000000Z.snap",
            "20261203T000000Z.snap",
            "20261202T000000Z.snap",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let removed = prune(dir.path(), 2).unwrap();
        assert_eq!(removed, [dir.path().join("20261201T000000Z.snap")]);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "20261202T000000Z.snap",
                "20261203T000000Z.snap",
                "notes.txt"
            ]
        );
        assert!(prune(dir.path(), 5).unwrap().is_empty());
    }
}
