//! The `Etcd` gRPC service: on-demand snapshots and restores. Served next
//! to `Node` with the same interceptor (roles hostctl:host or
//! hostctl:admin). One operation at a time per node: a restore must not
//! race a snapshot or another restore.

use std::sync::Arc;
use tracing::Instrument as _; // spawned work stays in the RPC span (docs/tracing.md)

use proto::v1::etcd_server::Etcd;
use proto::v1::{
    Error as ApiError, ErrorCode, EtcdSnapshotRequest, NodeMeta, ProgressEvent, RestoreChunk,
    SnapshotChunk, snapshot_chunk::Kind,
};
use tokio::sync::{Mutex, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::restore::{Inbound, Progress, Restorer};
use super::snapshot::{self, ORIGIN_ON_DEMAND, Taker, chunk};
use super::{EtcdError, EtcdTarget};

/// Chunks buffered per channel between etcd and the caller (two channels:
/// taker → forwarder → gRPC): bounds memory per stream. A chunk is one of
/// etcd's 32 KiB pieces, so 16 hold what two of the 256 KiB chunks the
/// agent used to assemble did (the snapshot benchmark measures the peak).
const IN_FLIGHT: usize = 16;

/// The service state.
pub struct EtcdService {
    control_plane: bool,
    taker: Taker,
    target: EtcdTarget,
    restorer: Arc<Restorer>,
    busy: Arc<Mutex<()>>,
}

impl EtcdService {
    /// Serves snapshots of `target` (only if `control_plane`) and restores
    /// through `restorer`.
    pub fn new(control_plane: bool, taker: Taker, target: EtcdTarget, restorer: Restorer) -> Self {
        EtcdService {
            control_plane,
            taker,
            target,
            restorer: Arc::new(restorer),
            busy: Arc::new(Mutex::new(())),
        }
    }

    fn refuse_worker(&self) -> Result<(), Status> {
        if self.control_plane {
            Ok(())
        } else {
            Err(Status::failed_precondition(format!(
                "{} is not a control-plane node: it runs no etcd",
                self.taker.node
            )))
        }
    }

    fn busy(&self) -> Result<tokio::sync::OwnedMutexGuard<()>, Status> {
        self.busy.clone().try_lock_owned().map_err(|_| {
            Status::unavailable("another etcd snapshot or restore is running on this node")
        })
    }
}

fn error_chunk(e: &EtcdError) -> SnapshotChunk {
    let code = match e {
        EtcdError::Integrity(_) => ErrorCode::Internal,
        EtcdError::Credentials { .. } => ErrorCode::FailedPrecondition,
        EtcdError::Etcd { .. } => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    chunk(Kind::Error(ApiError {
        code: code as i32,
        message: e.to_string(),
        detail: String::new(),
    }))
}

type ChunkStream = ReceiverStream<Result<SnapshotChunk, Status>>;
type ProgressStream = ReceiverStream<Result<ProgressEvent, Status>>;

#[tonic::async_trait]
impl Etcd for EtcdService {
    type SnapshotStream = ChunkStream;

    async fn snapshot(
        &self,
        _: Request<EtcdSnapshotRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        self.refuse_worker()?;
        // Said plainly rather than as a failed connection: etcd is not
        // there before kubeadm init (nor ever on a local-provider node).
        if !self.target.is_set_up() {
            return Err(Status::failed_precondition(
                "no etcd on this node: kubeadm has not set it up here (kubeadm init has not run; a node of the local provider never runs it)",
            ));
        }
        let guard = self.busy()?;
        let (out_tx, out_rx) = mpsc::channel(IN_FLIGHT);
        let (tx, mut rx) = mpsc::channel::<SnapshotChunk>(IN_FLIGHT);
        let (target, taker) = (self.target.clone(), self.taker.clone());
        tokio::spawn(
            async move {
                let forward = async {
                    while let Some(c) = rx.recv().await {
                        if out_tx.send(Ok(c)).await.is_err() {
                            return;
                        }
                    }
                };
                let take = async {
                    let r = snapshot::take(&target, &taker, ORIGIN_ON_DEMAND, &tx).await;
                    drop(tx);
                    r
                };
                let (result, ()) = tokio::join!(take, forward);
                match result {
                    Ok((meta, v)) => tracing::info!(
                        revision = meta.revision,
                        size = v.size,
                        "etcd snapshot streamed"
                    ),
                    Err(EtcdError::ReceiverGone) => tracing::info!("snapshot caller went away"),
                    Err(e) => {
                        tracing::warn!(error = %e, "etcd snapshot failed");
                        drop(guard);
                        let _ = out_tx.send(Ok(error_chunk(&e))).await;
                        return;
                    }
                }
                // Free the node before the caller sees the stream end.
                drop(guard);
                drop(out_tx);
            }
            .in_current_span(),
        );
        Ok(Response::new(ReceiverStream::new(out_rx)))
    }

    type RestoreStream = ProgressStream;

    async fn restore(
        &self,
        req: Request<Streaming<RestoreChunk>>,
    ) -> Result<Response<ProgressStream>, Status> {
        let inbound: Inbound = Box::pin(req.into_inner().map(|r| r));
        let rx = self.restore_stream(inbound).await?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

impl EtcdService {
    /// Starts a restore from `inbound`; the events arrive on the returned
    /// receiver, the last one carrying the outcome. (The gRPC method is a
    /// thin wrapper, so tests can drive a restore without a transport.)
    pub async fn restore_stream(
        &self,
        inbound: Inbound,
    ) -> Result<mpsc::Receiver<Result<ProgressEvent, Status>>, Status> {
        self.refuse_worker()?;
        let guard = self.busy()?;
        let (tx, rx) = mpsc::channel(16);
        let meta = NodeMeta {
            node: self.taker.node.clone(),
            cluster: self.taker.cluster.clone(),
        };
        let restorer = self.restorer.clone();
        tokio::spawn(
            async move {
                let progress = Progress::new(tx, meta);
                restorer.run(inbound, &progress).await;
                // Free the node before the caller sees the stream end.
                drop(guard);
                drop(progress);
            }
            .in_current_span(),
        );
        Ok(rx)
    }
}
