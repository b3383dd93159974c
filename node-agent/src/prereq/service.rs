//! The `Provisioning` gRPC service, served beside `Node` on the mutual-TLS
//! listener and authorised by the same interceptor
//! ([`crate::service::authorise`]: roles `hostctl:host` or `hostctl:admin`).
//!
//! One run at a time per node: a second call while one runs is refused with
//! `FAILED_PRECONDITION` ("already running") instead of queueing, so the
//! host never has two streams racing over apt's lock and learns at once
//! that it called twice.

use std::sync::Arc;
use tracing::Instrument as _; // spawned work stays in the RPC span (docs/tracing.md)

use proto::v1::provisioning_server::Provisioning;
use proto::v1::{PrerequisitesRequest, ProgressEvent};
use tokio::sync::{Mutex, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::Inputs;
use super::run::Prerequisites;

/// The service state.
pub struct ProvisioningService {
    prerequisites: Prerequisites,
    running: Arc<Mutex<()>>,
}

impl ProvisioningService {
    /// A service running the steps as `prerequisites` describes.
    pub fn new(prerequisites: Prerequisites) -> Self {
        ProvisioningService {
            prerequisites,
            running: Arc::new(Mutex::new(())),
        }
    }
}

#[tonic::async_trait]
impl Provisioning for ProvisioningService {
    type InstallPrerequisitesStream = ReceiverStream<Result<ProgressEvent, Status>>;

    async fn install_prerequisites(
        &self,
        req: Request<PrerequisitesRequest>,
    ) -> Result<Response<Self::InstallPrerequisitesStream>, Status> {
        let inputs = Inputs::from_request(req.get_ref())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let guard = self.running.clone().try_lock_owned().map_err(|_| {
            Status::failed_precondition("prerequisites are already running on this node")
        })?;
        let (tx, rx) = mpsc::channel(32);
        let prerequisites = self.prerequisites.clone();
        tokio::spawn(
            async move {
                // The failure was already sent as the stream's last event.
                let _ = prerequisites.run(&inputs, &tx).await;
                drop(guard);
            }
            .in_current_span(),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
