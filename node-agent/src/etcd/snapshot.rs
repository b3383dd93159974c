//! etcd's `Maintenance.Snapshot` stream, re-chunked into `SnapshotChunk`s.
//!
//! The bytes are passed on exactly as etcd sends them (database, then its
//! SHA-256), so the receiver stores a file `etcdctl`/`etcdutl` accept. The
//! trailing hash is checked as the bytes pass; the trailer chunk is only
//! sent if it matched, so a receiver that got a trailer got a good file.
//! Memory is bounded by the channel: at most its capacity in chunks of
//! [`CHUNK_BYTES`] are in flight, whatever the database size.

use std::time::SystemTime;

use proto::snapshot::{TrailerHasher, Verified};
use proto::v1::{SnapshotChunk, SnapshotMeta, SnapshotTrailer, snapshot_chunk::Kind};
use tokio::sync::mpsc;

use super::{EtcdError, EtcdTarget};

/// Size of the data chunks sent on (etcd itself sends 32 KiB pieces;
/// larger gRPC messages cost less per byte).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// How a snapshot was triggered, recorded in its metadata.
pub const ORIGIN_ON_DEMAND: &str = "on-demand";
/// Taken by the node's own schedule.
pub const ORIGIN_SCHEDULED: &str = "scheduled";

/// Who takes the snapshot, for its metadata.
#[derive(Debug, Clone)]
pub struct Taker {
    pub cluster: String,
    pub node: String,
}

/// A chunk holding `kind`.
pub fn chunk(kind: Kind) -> SnapshotChunk {
    SnapshotChunk { kind: Some(kind) }
}

async fn send(tx: &mpsc::Sender<SnapshotChunk>, kind: Kind) -> Result<(), EtcdError> {
    tx.send(chunk(kind))
        .await
        .map_err(|_| EtcdError::ReceiverGone)
}

/// Takes a snapshot and sends meta, data and trailer chunks to `tx`.
/// On error nothing more is sent; the caller reports the error.
pub async fn take(
    target: &EtcdTarget,
    taker: &Taker,
    origin: &str,
    tx: &mpsc::Sender<SnapshotChunk>,
) -> Result<(SnapshotMeta, Verified), EtcdError> {
    let mut client = target.connect().await?;
    let (before, etcd_version) = EtcdTarget::status(&mut client).await?;
    let taken_at = SystemTime::now();
    let mut stream = client
        .maintenance_client()
        .snapshot()
        .await
        .map_err(|e| EtcdError::Etcd {
            what: "opening the snapshot stream",
            source: e,
        })?;
    let etcd_err = |what| move |source| EtcdError::Etcd { what, source };
    let first = stream
        .message()
        .await
        .map_err(etcd_err("snapshot stream"))?;
    // The server pinned its backend snapshot before sending the first
    // chunk: a revision equal before and after is the snapshot's own.
    let (after, _) = EtcdTarget::status(&mut client).await?;
    let meta = SnapshotMeta {
        cluster: taker.cluster.clone(),
        node: taker.node.clone(),
        revision: before,
        revision_exact: before == after,
        etcd_version,
        taken_at: Some(proto::timestamp(taken_at)),
        origin: origin.to_owned(),
    };
    send(tx, Kind::Meta(meta.clone())).await?;
    let mut hasher = TrailerHasher::new();
    let mut buffer = Vec::with_capacity(CHUNK_BYTES);
    let mut next = first;
    while let Some(response) = next {
        let blob = response.blob();
        hasher.update(blob);
        buffer.extend_from_slice(blob);
        if buffer.len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut buffer, Vec::with_capacity(CHUNK_BYTES));
            send(tx, Kind::Data(full)).await?;
        }
        next = stream
            .message()
            .await
            .map_err(etcd_err("snapshot stream"))?;
    }
    if !buffer.is_empty() {
        send(tx, Kind::Data(buffer)).await?;
    }
    let verified = hasher.finish()?;
    send(
        tx,
        Kind::Trailer(SnapshotTrailer {
            sha256: verified.sha256.to_vec(),
            size: verified.size,
        }),
    )
    .await?;
    Ok((meta, verified))
}
