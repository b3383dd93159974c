//! etcd's `Maintenance.Snapshot` called on the agent's own channel, with
//! the response's `blob` decoded as [`Bytes`].
//!
//! etcd-client decodes `blob` into a `Vec<u8>` it only lends out, so every
//! piece had to be copied to be passed on. Decoded here, a piece is a view
//! of the buffer tonic received it in, and goes out as a `SnapshotChunk`
//! as it is: no copy and no re-chunking between etcd and the caller. Only
//! the two fields the agent reads are declared; prost skips the rest
//! (`header`, and `version` from etcd 3.6 on).

use prost::bytes::Bytes;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};

/// The method's path in etcd's API (`etcdserverpb.Maintenance`).
const SNAPSHOT: &str = "/etcdserverpb.Maintenance/Snapshot";

/// `etcdserverpb.SnapshotRequest` (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotRequest {}

/// The part of `etcdserverpb.SnapshotResponse` the agent reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotResponse {
    /// Bytes still to come after this piece.
    #[prost(uint64, tag = "2")]
    pub remaining_bytes: u64,
    /// The next piece of the snapshot file (etcd sends 32 KiB).
    #[prost(bytes = "bytes", tag = "3")]
    pub blob: Bytes,
}

/// Opens the snapshot stream on `channel`.
pub async fn snapshot(channel: Channel) -> Result<Streaming<SnapshotResponse>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("etcd channel not ready: {e}")))?;
    let codec = tonic_prost::ProstCodec::<SnapshotRequest, SnapshotResponse>::default();
    let response = grpc
        .server_streaming(
            Request::new(SnapshotRequest {}),
            PathAndQuery::from_static(SNAPSHOT),
            codec,
        )
        .await?;
    Ok(response.into_inner())
}
