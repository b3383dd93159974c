//! Snapshot files on the node: written under a `.part` name, verified,
//! fsynced and renamed ([`fsio::PartFile`]), so a crash or a bad stream
//! never leaves a partial file under a final name; and read back as a
//! verified chunk stream.

use std::path::Path;

use proto::snapshot::{IntegrityError, TrailerHasher, Verified};
use proto::v1::{SnapshotChunk, SnapshotMeta, SnapshotTrailer, snapshot_chunk::Kind};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::EtcdError;
use super::snapshot::{CHUNK_BYTES, chunk};

/// Mode of snapshot files on the node: owner only, since a snapshot holds
/// every Secret of its cluster (the host keeps its copies 0600 too).
pub const SNAPSHOT_MODE: u32 = 0o600;

/// Feeds a [`fsio::PartFile`] to etcd's integrity rule (the file ends
/// with the SHA-256 of everything before it).
#[derive(Clone, Default)]
struct Trailer(TrailerHasher);

impl fsio::PartHasher for Trailer {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

/// A snapshot being received ([`fsio::PartFile`]); removed unless
/// committed.
pub struct PartFile(fsio::PartFile<Trailer>);

impl PartFile {
    /// Starts `<target>.part` (the directory must exist).
    pub async fn create(target: &Path) -> Result<PartFile, EtcdError> {
        let part = fsio::PartFile::with_hasher(target, SNAPSHOT_MODE, Trailer::default()).await?;
        Ok(PartFile(part))
    }

    /// Appends the next bytes.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), EtcdError> {
        Ok(self.0.write(data).await?)
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.0.size()
    }

    /// Verifies the trailing hash (and the sender's trailer, if any), then
    /// makes the file durable under its final name.
    pub async fn commit(self, trailer: Option<&SnapshotTrailer>) -> Result<Verified, EtcdError> {
        let verify = |hasher: Trailer| {
            let verified = hasher.0.finish()?;
            if let Some(t) = trailer {
                verified.matches(&t.sha256, t.size)?;
            }
            Ok::<_, IntegrityError>(verified)
        };
        match self.0.commit_with(verify).await {
            Ok(verified) => Ok(verified),
            Err(fsio::CommitError::Rejected(e)) => Err(e.into()),
            Err(fsio::CommitError::Io(e)) => Err(e.into()),
        }
    }
}

/// Sends `meta`, the file's bytes and a trailer to `tx`, verifying the
/// file's own hash on the way (a file damaged on disk is not shipped).
pub async fn send_file(
    path: &Path,
    meta: SnapshotMeta,
    tx: &mpsc::Sender<SnapshotChunk>,
) -> Result<Verified, EtcdError> {
    let gone = |_| EtcdError::ReceiverGone;
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(EtcdError::io("opening", path))?;
    tx.send(chunk(Kind::Meta(meta))).await.map_err(gone)?;
    let mut hasher = TrailerHasher::new();
    loop {
        let mut buffer = Vec::with_capacity(CHUNK_BYTES);
        let n = (&mut file)
            .take(CHUNK_BYTES as u64)
            .read_to_end(&mut buffer)
            .await
            .map_err(EtcdError::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer);
        tx.send(chunk(Kind::Data(buffer.into())))
            .await
            .map_err(gone)?;
    }
    let verified = hasher.finish()?;
    let trailer = SnapshotTrailer {
        sha256: verified.sha256.to_vec(),
        size: verified.size,
    };
    tx.send(chunk(Kind::Trailer(trailer))).await.map_err(gone)?;
    Ok(verified)
}
