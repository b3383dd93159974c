//! The `Kubeadm` gRPC service, served beside `Node` on the mutual-TLS
//! listener and authorised by the same interceptor
//! ([`crate::service::authorise`]: roles `hostctl:host` or `hostctl:admin`).
//!
//! One kubeadm operation at a time per node: a second call while one runs
//! is refused with `FAILED_PRECONDITION` ("kubeadm already running")
//! rather than queued, because two kubeadm processes would fight over the
//! same files and ports, and the host should learn at once that it called
//! twice.

use std::sync::Arc;
use tracing::Instrument as _; // spawned work stays in the RPC span (docs/tracing.md)

use proto::v1::kubeadm_server::Kubeadm as KubeadmApi;
use proto::v1::{KubeadmInitRequest, KubeadmJoinRequest, KubeadmResetRequest, ProgressEvent};
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::ops::Operations;

/// The service state.
pub struct KubeadmService {
    ops: Operations,
    running: Arc<Mutex<()>>,
}

impl KubeadmService {
    /// A service carrying out `ops`.
    pub fn new(ops: Operations) -> Self {
        KubeadmService {
            ops,
            running: Arc::new(Mutex::new(())),
        }
    }

    fn exclusive(&self) -> Result<OwnedMutexGuard<()>, Status> {
        self.running
            .clone()
            .try_lock_owned()
            .map_err(|_| Status::failed_precondition("kubeadm already running on this node"))
    }
}

type Stream = ReceiverStream<Result<ProgressEvent, Status>>;

#[tonic::async_trait]
impl KubeadmApi for KubeadmService {
    type InitStream = Stream;

    async fn init(&self, req: Request<KubeadmInitRequest>) -> Result<Response<Stream>, Status> {
        let guard = self.exclusive()?;
        let (tx, rx) = mpsc::channel(64);
        let (ops, req) = (self.ops.clone(), req.into_inner());
        tokio::spawn(
            async move {
                let result = ops.init(&req, &tx).await;
                // Free the node before the caller sees the stream end.
                drop(guard);
                ops.finish(&tx, &result).await;
            }
            .in_current_span(),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type JoinStream = Stream;

    async fn join(&self, req: Request<KubeadmJoinRequest>) -> Result<Response<Stream>, Status> {
        let guard = self.exclusive()?;
        let (tx, rx) = mpsc::channel(64);
        let (ops, req) = (self.ops.clone(), req.into_inner());
        tokio::spawn(
            async move {
                let result = ops.join(&req, &tx).await;
                drop(guard);
                ops.finish(&tx, &result).await;
            }
            .in_current_span(),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type ResetStream = Stream;

    async fn reset(&self, _: Request<KubeadmResetRequest>) -> Result<Response<Stream>, Status> {
        let guard = self.exclusive()?;
        let (tx, rx) = mpsc::channel(64);
        let ops = self.ops.clone();
        tokio::spawn(
            async move {
                let result = ops.reset(&tx).await;
                drop(guard);
                ops.finish(&tx, &result).await;
            }
            .in_current_span(),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
