//! etcd's `Maintenance.Snapshot` stream, passed on as `SnapshotChunk`s.
//!
//! The bytes are passed on exactly as etcd sends them (database, then its
//! SHA-256), so the receiver stores a file `etcdctl`/`etcdutl` accept. Each
//! piece etcd sends becomes one data chunk holding the same buffer
//! ([`super::raw`]): nothing is copied or re-chunked on the way. The
//! trailing hash is checked as the bytes pass (the agent's one hash of
//! them); the trailer chunk is only sent if it matched, so a receiver that
//! got a trailer got a good file. Memory is bounded by the channel: at most
//! its capacity in etcd's pieces are in flight, whatever the database size.

use std::time::SystemTime;

use proto::snapshot::{TrailerHasher, Verified};
use proto::v1::{SnapshotChunk, SnapshotMeta, SnapshotTrailer, snapshot_chunk::Kind};
use tokio::sync::mpsc;

use super::{EtcdError, EtcdTarget, raw};

/// Size of the data chunks read from a snapshot file on the node.
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
    let channel = target.channel().await?;
    let mut client = EtcdTarget::client(channel.clone()).await?;
    let (before, etcd_version) = EtcdTarget::status(&mut client).await?;
    let taken_at = SystemTime::now();
    let etcd_err = |what| {
        move |status| EtcdError::Etcd {
            what,
            source: etcd_client::Error::GRpcStatus(status),
        }
    };
    let mut stream = raw::snapshot(channel)
        .await
        .map_err(etcd_err("opening the snapshot stream"))?;
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
    let mut next = first;
    while let Some(response) = next {
        if !response.blob.is_empty() {
            hasher.update(&response.blob);
            send(tx, Kind::Data(response.blob)).await?;
        }
        next = stream
            .message()
            .await
            .map_err(etcd_err("snapshot stream"))?;
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
