//! A `SnapshotChunk` stream into the store: meta first, data, trailer last.
//! The same path serves pulls (`hostctl etcd snapshot`) and uploads (the
//! daemon's sink), so both store identically.

use proto::v1::{SnapshotChunk, SnapshotMeta, snapshot_chunk::Kind};
use tokio_stream::{Stream, StreamExt};

use super::SnapshotError;
use super::store::{SnapshotStore, Stored};

/// Checks the metadata before anything is written (e.g. the uploader's
/// right to store for this cluster).
pub type MetaCheck<'a> = &'a (dyn Fn(&SnapshotMeta) -> Result<(), SnapshotError> + Send + Sync);

/// Receives one snapshot from `chunks` into `store`.
pub async fn receive<S>(
    store: &SnapshotStore,
    mut chunks: S,
    check: MetaCheck<'_>,
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
    check(&meta)?;
    let mut incoming = store.begin(meta).await?;
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
