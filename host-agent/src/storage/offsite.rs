//! Snapshots copied off the clusters into the host's store, and fetched
//! back: every upload is signed with the file's SHA-256 (Garage refuses a
//! body that differs), then read back with `HEAD` and held to the digest
//! and size, so a copy hostctl reports as stored is one it has checked.
//! Uploading again is a no-op for objects already there with the same
//! digest, so an interrupted upload is finished by running it again.

use super::error::StorageError;
use super::plan::ETCD_BUCKET;
use super::s3::S3;
use crate::snapshots::SnapshotStore;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// One object this module stored or found already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub key: String,
    pub size: u64,
    pub sha256: String,
    /// False when an identical copy was already there.
    pub sent: bool,
}

/// The file's size and SHA-256, read in chunks (flat memory).
pub async fn digest_file(path: &Path) -> Result<(u64, String), StorageError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&owned).map_err(StorageError::io(&owned))?;
        let (mut hasher, mut size, mut buf) = (Sha256::new(), 0u64, vec![0u8; 256 * 1024]);
        loop {
            let n = file.read(&mut buf).map_err(StorageError::io(&owned))?;
            if n == 0 {
                return Ok((size, hex::encode(hasher.finalize())));
            }
            size += n as u64;
            hasher.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| StorageError::Config {
        what: format!("hashing {}", path.display()),
        reason: e.to_string(),
    })?
}

/// Uploads `path` as `bucket/key` unless the same bytes are there, then
/// checks the stored copy's digest and size.
pub async fn upload_file(
    client: &S3,
    bucket: &str,
    key: &str,
    path: &Path,
) -> Result<Uploaded, StorageError> {
    let (size, sha256) = digest_file(path).await?;
    upload_known(client, bucket, key, path, size, sha256).await
}

/// [`upload_file`] for a file whose size and whole-file SHA-256 the
/// caller has just computed. (A stored snapshot's recorded `sha256` is not
/// that: it covers the file without etcd's own 32-byte trailing hash, so
/// snapshots are hashed here again.)
async fn upload_known(
    client: &S3,
    bucket: &str,
    key: &str,
    path: &Path,
    size: u64,
    sha256: String,
) -> Result<Uploaded, StorageError> {
    let stored = client.head(bucket, key).await?;
    let already = stored
        .as_ref()
        .is_some_and(|h| h.size == size && h.sha256.as_deref() == Some(sha256.as_str()));
    if !already {
        client.put_file(bucket, key, path, &sha256).await?;
        let head = client.head(bucket, key).await?;
        let actual = head
            .as_ref()
            .map(|h| {
                format!(
                    "{} ({} bytes)",
                    h.sha256.clone().unwrap_or_default(),
                    h.size
                )
            })
            .unwrap_or_else(|| "missing".into());
        if head.as_ref().map(|h| (h.size, h.sha256.as_deref())) != Some((size, Some(&sha256))) {
            return Err(StorageError::HashMismatch {
                object: format!("{bucket}/{key}"),
                expected: format!("{sha256} ({size} bytes)"),
                actual,
            });
        }
    }
    Ok(Uploaded {
        key: key.to_owned(),
        size,
        sha256,
        sent: !already,
    })
}

/// The object key of an etcd snapshot file of `cluster`.
pub fn etcd_key(cluster: &str, file: &str) -> String {
    format!("{cluster}/{file}")
}

/// Every stored etcd snapshot of `cluster` (its `.db` and its `.json`
/// metadata) into the `etcd` bucket.
pub async fn upload_etcd(
    client: &S3,
    store: &SnapshotStore,
    cluster: &str,
) -> Result<Vec<Uploaded>, StorageError> {
    let unreadable = |e: crate::snapshots::SnapshotError| StorageError::Config {
        what: format!("the snapshots of {cluster}"),
        reason: e.to_string(),
    };
    let dir = store.cluster_dir(cluster).map_err(unreadable)?;
    let infos = store.list(cluster).map_err(unreadable)?;
    let mut out = Vec::new();
    for info in infos {
        let db = dir.join(&info.file);
        let meta = db.with_extension("json");
        let meta_name = format!("{}.json", info.file.trim_end_matches(".db"));
        let key = etcd_key(cluster, &info.file);
        out.push(match already_copied(client, &key, &db).await? {
            Some(copied) => copied,
            None => upload_file(client, ETCD_BUCKET, &key, &db).await?,
        });
        out.push(upload_file(client, ETCD_BUCKET, &etcd_key(cluster, &meta_name), &meta).await?);
    }
    Ok(out)
}

/// A stored snapshot the bucket already holds, checked when it was sent:
/// the host's store never replaces a snapshot, so the same name and size
/// with a recorded digest is the same copy, and the file is not read again
/// (each scheduled snapshot would otherwise re-hash every one kept).
async fn already_copied(
    client: &S3,
    key: &str,
    file: &Path,
) -> Result<Option<Uploaded>, StorageError> {
    let size = std::fs::metadata(file)
        .map_err(StorageError::io(file))?
        .len();
    Ok(match client.head(ETCD_BUCKET, key).await? {
        Some(super::s3::Head {
            size: stored,
            sha256: Some(sha256),
        }) if stored == size => Some(Uploaded {
            key: key.to_owned(),
            size,
            sha256,
            sent: false,
        }),
        _ => None,
    })
}

/// Downloads `bucket/key` to `dest` and holds it to the digest stored with
/// it; a copy that does not match is deleted, never left to be restored.
pub async fn download_verified(
    client: &S3,
    bucket: &str,
    key: &str,
    dest: &Path,
    max_bytes: u64,
) -> Result<Uploaded, StorageError> {
    let head = client
        .head(bucket, key)
        .await?
        .ok_or_else(|| StorageError::Api {
            call: format!("HEAD {bucket}/{key}"),
            status: 404,
            body: "no such object".into(),
        })?;
    let (size, sha256) = client.get_to_file(bucket, key, dest, max_bytes).await?;
    if head.sha256.as_deref() != Some(sha256.as_str()) || head.size != size {
        let _ = std::fs::remove_file(dest);
        return Err(StorageError::HashMismatch {
            object: format!("{bucket}/{key}"),
            expected: head.sha256.unwrap_or_else(|| "(none stored)".into()),
            actual: sha256,
        });
    }
    Ok(Uploaded {
        key: key.to_owned(),
        size,
        sha256,
        sent: false,
    })
}
