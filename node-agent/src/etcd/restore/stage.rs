//! `restore/receive`, shared by a plain and a seed restore: the snapshot
//! the host streams is staged next to the data directory (on the same
//! filesystem, which has room for the database) and verified against the
//! trailer before anything uses it; it is deleted afterwards on every path.

use std::path::{Path, PathBuf};

use proto::v1::restore_chunk::Kind;
use tokio_stream::StreamExt;

use super::{Inbound, Progress, RestoreError, Restorer};
use crate::etcd::EtcdError;
use crate::etcd::file::PartFile;

impl Restorer {
    /// `restore/receive`: receives the snapshot next to `data_dir` (a real
    /// path), first removing what an interrupted restore staged there, and
    /// checks it against the trailer. The snapshot is deleted when the
    /// returned guard drops, on every path.
    pub(super) async fn stage(
        &self,
        inbound: &mut Inbound,
        data_dir: &Path,
        stamp: &str,
        progress: &Progress,
        phase: &str,
        percent: f32,
    ) -> Result<RemoveOnDrop, RestoreError> {
        let parent = data_dir.parent().unwrap_or(&self.root).to_owned();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(EtcdError::io("creating", &parent))?;
        remove_staged(&parent).await;
        let snapshot = parent.join(format!("{STAGED_PREFIX}{stamp}.db"));
        let received = receive(inbound, &snapshot).await?;
        let staged = RemoveOnDrop(snapshot);
        progress
            .step(
                phase,
                format!(
                    "received {} bytes, sha256 {} verified",
                    received.size,
                    received.sha256_hex()
                ),
                percent,
            )
            .await;
        Ok(staged)
    }
}

pub(super) async fn next_kind(inbound: &mut Inbound) -> Result<Option<Kind>, RestoreError> {
    match inbound.next().await {
        None => Ok(None),
        Some(Ok(chunk)) => Ok(chunk.kind),
        Some(Err(status)) => Err(RestoreError::Protocol(format!(
            "the stream broke: {}",
            status.message()
        ))),
    }
}

/// Writes the data chunks to `path` and checks them against the trailer.
async fn receive(
    inbound: &mut Inbound,
    path: &Path,
) -> Result<proto::snapshot::Verified, RestoreError> {
    let mut part = PartFile::create(path).await?;
    loop {
        match next_kind(inbound).await? {
            Some(Kind::Data(d)) => part.write(&d).await?,
            Some(Kind::Trailer(t)) => return Ok(part.commit(Some(&t)).await?),
            Some(Kind::Start(_)) => return Err(RestoreError::Protocol("a second `start`".into())),
            None => {
                return Err(RestoreError::Protocol(format!(
                    "the stream ended after {} bytes without a trailer",
                    part.size()
                )));
            }
        }
    }
}

/// How a snapshot staged for a restore is named, next to the data dir.
const STAGED_PREFIX: &str = "hostctl-restore-";

/// Removes snapshots an interrupted restore staged in `dir` (whole or
/// `.part`): restores run one at a time ([`super::service`]), so any found
/// when one starts are a crash's leftovers — each as large as the database.
async fn remove_staged(dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        let staged = name.starts_with(STAGED_PREFIX)
            && (name.ends_with(".db") || name.ends_with(".db.part"));
        if staged && e.file_type().await.is_ok_and(|t| t.is_file()) {
            match tokio::fs::remove_file(e.path()).await {
                Ok(()) => {
                    tracing::info!(file = %e.path().display(), "removed a snapshot an interrupted restore staged")
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), "cannot remove a staged snapshot: {err}")
                }
            }
        }
    }
}

/// Deletes the staged snapshot once the restore no longer needs it (the
/// host keeps the original).
pub(super) struct RemoveOnDrop(pub(super) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
