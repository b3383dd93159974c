//! The CLI's side of a node's `Etcd` service: pull a snapshot into the
//! store, stream a stored snapshot back for a restore.

use std::path::Path;

use proto::v1::etcd_client::EtcdClient;
use proto::v1::{
    EtcdSnapshotRequest, ProgressEvent, RestoreChunk, RestoreStart, SnapshotTrailer,
    restore_chunk::Kind,
};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::receive::receive;
use super::store::{SnapshotInfo, SnapshotStore, Stored};
use super::{SnapshotError, Source};

/// Size of the chunks streamed to a node.
const CHUNK_BYTES: usize = 256 * 1024;

/// Asks `source`'s node, behind `channel`, for a snapshot and stores it
/// under `source.cluster`. `source` comes from the topology entry the
/// caller dialled; a node whose metadata names another cluster or node is
/// refused ([`SnapshotError::WrongSource`]).
pub async fn pull_from(
    channel: Channel,
    store: &SnapshotStore,
    source: &Source,
) -> Result<Stored, SnapshotError> {
    let stream = EtcdClient::new(channel)
        .snapshot(EtcdSnapshotRequest {})
        .await
        .map_err(SnapshotError::Transport)?
        .into_inner();
    receive(store, stream, source).await
}

/// Streams the stored snapshot at `path` to the node for a restore and
/// calls `on_event` for each progress event; returns the last one. `seed`
/// restores onto a node kubeadm has not initialised yet (the lost-node
/// recovery) instead of swapping a running etcd's data.
pub async fn restore(
    channel: Channel,
    path: &Path,
    info: &SnapshotInfo,
    confirmed: bool,
    seed: Option<proto::v1::EtcdSeed>,
    mut on_event: impl FnMut(&ProgressEvent),
) -> Result<Option<ProgressEvent>, SnapshotError> {
    let (tx, rx) = mpsc::channel(4);
    let start = RestoreChunk {
        kind: Some(Kind::Start(RestoreStart {
            meta: Some(info.to_proto()),
            confirmed,
            seed,
        })),
    };
    let sha256 = (0..info.sha256.len() / 2)
        .map(|i| u8::from_str_radix(&info.sha256[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| SnapshotError::Protocol(format!("bad sha256 in metadata of {}", info.file)))?;
    let trailer = SnapshotTrailer {
        sha256,
        size: info.size,
    };
    let path = path.to_owned();
    let sender = tokio::spawn(async move {
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(SnapshotError::io("opening", &path))?;
        if tx.send(start).await.is_err() {
            return Ok(());
        }
        loop {
            let mut buffer = Vec::with_capacity(CHUNK_BYTES);
            let n = (&mut file)
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut buffer)
                .await
                .map_err(SnapshotError::io("reading", &path))?;
            if n == 0 {
                break;
            }
            if tx
                .send(RestoreChunk {
                    kind: Some(Kind::Data(buffer.into())),
                })
                .await
                .is_err()
            {
                // The node stopped reading (it refused); its events say why.
                return Ok(());
            }
        }
        let _ = tx
            .send(RestoreChunk {
                kind: Some(Kind::Trailer(trailer)),
            })
            .await;
        Ok::<_, SnapshotError>(())
    });
    let mut events = EtcdClient::new(channel)
        .restore(ReceiverStream::new(rx))
        .await
        .map_err(SnapshotError::Transport)?
        .into_inner();
    let mut last = None;
    while let Some(event) = events.message().await.map_err(SnapshotError::Transport)? {
        on_event(&event);
        last = Some(event);
    }
    sender.abort();
    Ok(last)
}
