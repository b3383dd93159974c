//! A `SnapshotChunk` stream into the store: meta first, data, trailer last.
//! The same path serves pulls (`hostctl etcd snapshot`) and uploads (the
//! daemon's sink), so both store identically.
//!
//! The caller says who sent the stream ([`Source`], known to the host);
//! metadata naming another cluster or node is refused before anything is
//! written, and what is stored records the source, not the claim.

use proto::v1::{SnapshotChunk, snapshot_chunk::Kind};
use tokio_stream::{Stream, StreamExt};

use super::store::{SnapshotStore, Stored};
use super::{SnapshotError, Source};

/// Receives one snapshot sent by `source` from `chunks` into `store`.
pub async fn receive<S>(
    store: &SnapshotStore,
    mut chunks: S,
    source: &Source,
) -> Result<Stored, SnapshotError>
where
    S: Stream<Item = Result<SnapshotChunk, tonic::Status>> + Unpin,
{
    let meta = match next(&mut chunks).await? {
        Some(Kind::Meta(m)) => m,
        Some(Kind::Error(e)) => return Err(SnapshotError::Node(e.message)),
        _ => {
            return Err(SnapshotError::Protocol(
                "the first message must be `meta`".into(),
            ));
        }
    };
    if meta.cluster != source.cluster || meta.node != source.node {
        return Err(SnapshotError::WrongSource {
            cluster: source.cluster.clone(),
            node: source.node.clone(),
            claimed_cluster: meta.cluster,
            claimed_node: meta.node,
        });
    }
    let mut incoming = store.begin(source, meta).await?;
    loop {
        match next(&mut chunks).await? {
            Some(Kind::Data(d)) => incoming.write(&d).await?,
            Some(Kind::Trailer(t)) => return incoming.commit(&t).await,
            Some(Kind::Error(e)) => return Err(SnapshotError::Node(e.message)),
            Some(Kind::Meta(_)) => return Err(SnapshotError::Protocol("a second `meta`".into())),
            None => {
                return Err(SnapshotError::Protocol(format!(
                    "the stream ended after {} bytes without a trailer",
                    incoming.size()
                )));
            }
        }
    }
}

async fn next<S>(chunks: &mut S) -> Result<Option<Kind>, SnapshotError>
where
    S: Stream<Item = Result<SnapshotChunk, tonic::Status>> + Unpin,
{
    match chunks.next().await {
        None => Ok(None),
        Some(Ok(c)) => Ok(c.kind),
        Some(Err(s)) => Err(SnapshotError::Transport(s)),
    }
}
