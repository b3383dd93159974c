//! `Host.Report`: the stream of health reports from one node.
//!
//! Two tasks per stream keep ingest pipelined without giving up ordering:
//! the *reader* checks each report (it must name the caller's own node,
//! else the stream ends with PERMISSION_DENIED and nothing of it is
//! stored) and submits it to the store without waiting; the *acker* awaits
//! the store's answers in submission order and acknowledges each report
//! only after its commit. A report whose (agent_instance, seq) was stored
//! before is acknowledged again but not stored twice, so a node can re-send
//! everything unacknowledged after a reconnect.

use std::pin::Pin;
use std::sync::Arc;

use proto::v1::host_server::Host;
use proto::v1::{HealthReport, ReportAck};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::authz::{self, HOST_REPORT};
use super::state::{self, Shared};
use crate::store::{Ingested, StoreError};

/// Reports submitted but not yet acknowledged, per stream. Bounds memory
/// when the store is slower than a node back-filling its buffer.
const IN_FLIGHT: usize = 256;

/// The Host service of one daemon.
pub struct HostService {
    shared: Arc<Shared>,
}

impl HostService {
    pub fn new(shared: Arc<Shared>) -> Self {
        HostService { shared }
    }
}

/// What the reader hands the acker, in stream order.
enum Pending {
    Stored {
        agent_instance: String,
        seq: u64,
        outcome: oneshot::Receiver<Result<Ingested, StoreError>>,
    },
    Refused(Status),
}

type AckStream = Pin<Box<dyn Stream<Item = Result<ReportAck, Status>> + Send>>;

#[tonic::async_trait]
impl Host for HostService {
    type ReportStream = AckStream;

    async fn report(
        &self,
        req: Request<Streaming<HealthReport>>,
    ) -> Result<Response<Self::ReportStream>, Status> {
        let caller = authz::authorize(&req, HOST_REPORT)?;
        let inbound = req.into_inner();
        let (pending_tx, pending_rx) = mpsc::channel(IN_FLIGHT);
        let (ack_tx, ack_rx) = mpsc::channel(IN_FLIGHT);
        let guard = state::connected(&self.shared, &caller.name);
        tracing::debug!(node = caller.name, "report stream opened");
        tokio::spawn(read(self.shared.clone(), caller.name, inbound, pending_tx));
        tokio::spawn(async move {
            acknowledge(pending_rx, ack_tx).await;
            drop(guard);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(ack_rx))))
    }
}

/// Checks why a report from `node` may not be stored, if it may not.
fn refusal(node: &str, r: &HealthReport) -> Option<Status> {
    if r.node != node {
        tracing::warn!(
            caller = node,
            claimed = r.node,
            "report refused: node mismatch"
        );
        return Some(Status::permission_denied(format!(
            "a node may report only as itself: certificate says {node:?}, report says {:?}",
            r.node
        )));
    }
    if r.agent_instance.is_empty() || r.seq == 0 {
        return Some(Status::invalid_argument(
            "agent_instance must be set and seq must start at 1",
        ));
    }
    None
}

async fn read(
    shared: Arc<Shared>,
    node: String,
    mut inbound: Streaming<HealthReport>,
    pending: mpsc::Sender<Pending>,
) {
    loop {
        let next = tokio::select! {
            next = inbound.message() => next,
            () = shared.shutdown_requested() => {
                let _ = pending.send(Pending::Refused(Status::unavailable("the host daemon is shutting down"))).await;
                return;
            }
        };
        let report = match next {
            Ok(Some(report)) => report,
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(node, "report stream ended: {status}");
                return;
            }
        };
        if let Some(status) = refusal(&node, &report) {
            let _ = pending.send(Pending::Refused(status)).await;
            return;
        }
        let item = Pending::Stored {
            agent_instance: report.agent_instance.clone(),
            seq: report.seq,
            // The host's clock, never the report's own `taken_at`:
            // staleness is judged by receipt (issue 13, item 10).
            outcome: shared
                .store
                .submit(&node, report, shared.config.clock.now()),
        };
        if pending.send(item).await.is_err() {
            return;
        }
    }
}

async fn acknowledge(
    mut pending: mpsc::Receiver<Pending>,
    acks: mpsc::Sender<Result<ReportAck, Status>>,
) {
    while let Some(item) = pending.recv().await {
        let answer = match item {
            Pending::Refused(status) => Err(status),
            Pending::Stored {
                agent_instance,
                seq,
                outcome,
            } => match outcome.await {
                Ok(Ok(_)) => Ok(ReportAck {
                    agent_instance,
                    seq,
                }),
                Ok(Err(e)) => Err(Status::unavailable(format!("report not stored: {e}"))),
                Err(_) => Err(Status::unavailable(
                    "report not stored: the store is closed",
                )),
            },
        };
        let last = answer.is_err();
        if acks.send(answer).await.is_err() || last {
            return;
        }
    }
}
