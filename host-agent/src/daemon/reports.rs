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
//!
//! Refusals (issue 13, items 2 and 8): a report larger than
//! [`MAX_REPORT_BYTES`] is acknowledged — so the node drops it instead of
//! re-sending it after every reconnect, which would wedge its stream —
//! and the stream then ends with INVALID_ARGUMENT naming its size and the
//! limit. A report the store cannot write ends the stream unacknowledged
//! (the node keeps it and re-sends it): RESOURCE_EXHAUSTED "host disk
//! full" when the disk is full, UNAVAILABLE otherwise.

use std::pin::Pin;
use std::sync::Arc;

use prost::Message as _;
use proto::limits::MAX_REPORT_BYTES;
use proto::v1::host_server::{Host, HostServer};
use proto::v1::{CertificateRenewalRequest, CertificateRenewalResponse, HealthReport, ReportAck};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::authz::{Caller, HOST_REPORT};
use super::state::{self, Shared};
use super::{nodecerts, renewal};
use crate::store::{Ingested, StoreError};

/// Reports submitted but not yet acknowledged, per stream. Bounds memory
/// when the store is slower than a node back-filling its buffer.
const IN_FLIGHT: usize = 256;

/// Largest message the Host service decodes: 4 × [`MAX_REPORT_BYTES`]
/// (256 KiB). A report between the two is still read, so that it can be
/// acknowledged as refused; a larger message is refused by the transport
/// before it is decoded (and ends the stream), which only a node agent
/// that ignores the shared limit meets. Far below tonic's 4 MiB default,
/// which let a node make the host buffer megabytes per message.
pub const MAX_REPORT_DECODE_BYTES: usize = 4 * MAX_REPORT_BYTES;

/// The Host service of one daemon.
pub struct HostService {
    shared: Arc<Shared>,
}

/// The Host service with its message size limit.
pub fn server(shared: Arc<Shared>) -> HostServer<HostService> {
    HostServer::new(HostService::new(shared)).max_decoding_message_size(MAX_REPORT_DECODE_BYTES)
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
    /// Ends the stream, after acknowledging `ack` when the report is
    /// refused for good (re-sending it could not help).
    Refused {
        ack: Option<ReportAck>,
        status: Status,
    },
}

type AckStream = Pin<Box<dyn Stream<Item = Result<ReportAck, Status>> + Send>>;

#[tonic::async_trait]
impl Host for HostService {
    type ReportStream = AckStream;

    async fn report(
        &self,
        req: Request<Streaming<HealthReport>>,
    ) -> Result<Response<Self::ReportStream>, Status> {
        let caller = nodecerts::authorize(&self.shared.node_certs, &req, HOST_REPORT)?;
        let inbound = req.into_inner();
        let (pending_tx, pending_rx) = mpsc::channel(IN_FLIGHT);
        let (ack_tx, ack_rx) = mpsc::channel(IN_FLIGHT);
        let guard = state::connected(&self.shared, &caller.name);
        tracing::debug!(node = caller.name, "report stream opened");
        let acked = Acked {
            shared: self.shared.clone(),
            node: caller.name.clone(),
        };
        tokio::spawn(read(self.shared.clone(), caller, inbound, pending_tx));
        tokio::spawn(async move {
            acknowledge(pending_rx, ack_tx, acked).await;
            drop(guard);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(ack_rx))))
    }

    async fn renew_certificate(
        &self,
        req: Request<CertificateRenewalRequest>,
    ) -> Result<Response<CertificateRenewalResponse>, Status> {
        renewal::renew(&self.shared, req).await
    }
}

/// Checks why a report from `node` may not be stored, if it may not.
fn refusal(node: &str, r: &HealthReport) -> Option<Pending> {
    let refused = |status| Some(Pending::Refused { ack: None, status });
    if r.node != node {
        tracing::warn!(
            caller = node,
            claimed = r.node,
            "report refused: node mismatch"
        );
        return refused(Status::permission_denied(format!(
            "a node may report only as itself: certificate says {node:?}, report says {:?}",
            r.node
        )));
    }
    if r.agent_instance.is_empty() || r.seq == 0 {
        return refused(Status::invalid_argument(
            "agent_instance must be set and seq must start at 1",
        ));
    }
    let size = r.encoded_len();
    if size > MAX_REPORT_BYTES {
        tracing::warn!(
            node,
            seq = r.seq,
            size,
            limit = MAX_REPORT_BYTES,
            "report refused: too large"
        );
        return Some(Pending::Refused {
            ack: Some(ReportAck {
                agent_instance: r.agent_instance.clone(),
                seq: r.seq,
            }),
            status: Status::invalid_argument(format!(
                "report {} of {size} bytes refused: the limit is {MAX_REPORT_BYTES} bytes \
                 (acknowledged, not stored)",
                r.seq
            )),
        });
    }
    None
}

/// What a node hears when the store did not take its report.
fn not_stored(e: StoreError) -> Status {
    let message = format!("report not stored: {e}");
    match e {
        StoreError::DiskFull { .. } => Status::resource_exhausted(message),
        StoreError::Invalid(_) | StoreError::TooLarge { .. } => Status::invalid_argument(message),
        _ => Status::unavailable(message),
    }
}

async fn read(
    shared: Arc<Shared>,
    caller: Caller,
    mut inbound: Streaming<HealthReport>,
    pending: mpsc::Sender<Pending>,
) {
    let node = caller.name.as_str();
    loop {
        let next = tokio::select! {
            next = inbound.message() => next,
            () = shared.shutdown_requested() => {
                let status = Status::unavailable("the host daemon is shutting down");
                let _ = pending.send(Pending::Refused { ack: None, status }).await;
                return;
            }
        };
        let report = match next {
            Ok(Some(report)) => {
                shared.metrics.reports_received.inc(node);
                report
            }
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(node, "report stream ended: {status}");
                return;
            }
        };
        // A revocation since the stream opened ends it here.
        if let Err(status) = shared.node_certs.still_accepted(&caller) {
            let _ = pending.send(Pending::Refused { ack: None, status }).await;
            return;
        }
        if let Some(refused) = refusal(node, &report) {
            let _ = pending.send(refused).await;
            return;
        }
        let item = Pending::Stored {
            agent_instance: report.agent_instance.clone(),
            seq: report.seq,
            // The host's clock, never the report's own `taken_at`:
            // staleness is judged by receipt (issue 13, item 10).
            outcome: shared.store.submit(node, report, shared.config.clock.now()),
        };
        if pending.send(item).await.is_err() {
            return;
        }
    }
}

/// Counts the acknowledgements of one node's stream.
struct Acked {
    shared: Arc<Shared>,
    node: String,
}

impl Acked {
    fn one(&self) {
        self.shared.metrics.reports_acknowledged.inc(&self.node);
    }

    /// A report of the node is committed: its status changed.
    fn stored(&self) {
        self.shared.changes.notify(&self.node);
    }
}

async fn acknowledge(
    mut pending: mpsc::Receiver<Pending>,
    acks: mpsc::Sender<Result<ReportAck, Status>>,
    acked: Acked,
) {
    while let Some(item) = pending.recv().await {
        let answer = match item {
            Pending::Refused { ack, status } => {
                if let Some(ack) = ack {
                    if acks.send(Ok(ack)).await.is_err() {
                        return;
                    }
                    acked.one();
                }
                Err(status)
            }
            Pending::Stored {
                agent_instance,
                seq,
                outcome,
            } => match outcome.await {
                Ok(Ok(_)) => {
                    acked.stored();
                    Ok(ReportAck {
                        agent_instance,
                        seq,
                    })
                }
                Ok(Err(e)) => Err(not_stored(e)),
                Err(_) => Err(Status::unavailable(
                    "report not stored: the store is closed",
                )),
            },
        };
        let last = answer.is_err();
        if acks.send(answer).await.is_err() || last {
            return;
        }
        acked.one();
    }
}
