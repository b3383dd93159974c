//! Snapshot files on the node: written under a `.part` name, verified,
//! fsynced and renamed, so a crash or a bad stream never leaves a partial
//! file under a final name; and read back as a verified chunk stream.

use std::path::{Path, PathBuf};

use proto::snapshot::{TrailerHasher, Verified};
use proto::v1::{SnapshotChunk, SnapshotMeta, SnapshotTrailer, snapshot_chunk::Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::EtcdError;
use super::snapshot::{CHUNK_BYTES, chunk};

/// A snapshot being received; removed unless committed.
pub struct PartFile {
    target: PathBuf,
    part: PathBuf,
    file: BufWriter<tokio::fs::File>,
    hasher: TrailerHasher,
    committed: bool,
}

impl PartFile {
    /// Starts `<target>.part` (the directory must exist).
    pub async fn create(target: &Path) -> Result<PartFile, EtcdError> {
        let mut part = target.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let file = tokio::fs::File::create(&part)
            .await
            .map_err(EtcdError::io("creating", &part))?;
        Ok(PartFile {
            target: target.to_owned(),
            part,
            file: BufWriter::with_capacity(CHUNK_BYTES, file),
            hasher: TrailerHasher::new(),
            committed: false,
        })
    }

    /// Appends the next bytes.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), EtcdError> {
        self.hasher.update(data);
        self.file
            .write_all(data)
            .await
            .map_err(EtcdError::io("writing", &self.part))
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.hasher.size()
    }

    /// Verifies the trailing hash (and the sender's trailer, if any), then
    /// makes the file durable under its final name.
    pub async fn commit(
        mut self,
        trailer: Option<&SnapshotTrailer>,
    ) -> Result<Verified, EtcdError> {
        let verified = self.hasher.clone().finish()?;
        if let Some(t) = trailer {
            verified.matches(&t.sha256, t.size)?;
        }
        let io = |what| EtcdError::io(what, &self.part);
        self.file.flush().await.map_err(io("flushing"))?;
        self.file
            .get_ref()
            .sync_all()
            .await
            .map_err(io("syncing"))?;
        tokio::fs::rename(&self.part, &self.target)
            .await
            .map_err(io("renaming"))?;
        self.committed = true;
        sync_parent(&self.target).await;
        Ok(verified)
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// Makes a rename durable; best effort (some filesystems refuse).
pub async fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = tokio::fs::File::open(dir).await
    {
        let _ = d.sync_all().await;
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
        tx.send(chunk(Kind::Data(buffer))).await.map_err(gone)?;
    }
    let verified = hasher.finish()?;
    let trailer = SnapshotTrailer {
        sha256: verified.sha256.to_vec(),
        size: verified.size,
    };
    tx.send(chunk(Kind::Trailer(trailer))).await.map_err(gone)?;
    Ok(verified)
}
