//! The nodes' span relay: the standard OTLP `TraceService/Export` served on
//! the mutual-TLS Host listener, so a node agent exports with the stock
//! OTLP exporter and its own certificate. Spans are kept per trace id in a
//! buffer bounded in bytes per calling node and in total
//! ([`::telemetry::relay::SpanBuffer`], docs/security.md, issue 13 item 7)
//! until the run owning the trace takes them over the Control socket
//! (docs/tracing.md).

use std::sync::Arc;

use ::telemetry::otlp::trace_service_server::{TraceService, TraceServiceServer};
use ::telemetry::otlp::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

use super::authz::OTLP_EXPORT;
use super::nodecerts;
use super::state::Shared;

/// Largest span batch accepted from a node, encoded. The exporter sends at
/// most 512 spans per batch (the SDK's default), a few hundred KiB at most
/// for the node agent's spans. The decoded request lives in memory
/// (several times its encoded size for small spans) until the buffer has
/// encoded what it keeps, so this bounds what one request costs the daemon
/// before any budget applies. Well below the node's buffer budget
/// ([`::telemetry::relay::NODE_BUDGET_BYTES`], 8 MiB).
const MAX_EXPORT_BYTES: usize = 2 * 1024 * 1024;

/// The relay service for the Host listener.
pub fn server(shared: Arc<Shared>) -> TraceServiceServer<Relay> {
    TraceServiceServer::new(Relay { shared }).max_decoding_message_size(MAX_EXPORT_BYTES)
}

/// See the module documentation.
pub struct Relay {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl TraceService for Relay {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let caller = nodecerts::authorize(&self.shared.node_certs, &req, OTLP_EXPORT)?;
        // The budget is the certificate's CN: a node cannot spend another's.
        let added = self.shared.traces.add(&caller.name, req.into_inner());
        // Debug, not warn: a node over its budget would otherwise write a
        // log line per request it sends.
        tracing::debug!(
            node = %caller.name,
            spans = added.stored,
            refused = added.refused,
            evicted = added.evicted,
            "relayed spans buffered"
        );
        // OTLP's way to tell the exporter some spans were not kept.
        let partial_success = (added.refused > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(added.refused).unwrap_or(i64::MAX),
            error_message: "spans over this node's relay budget, or with a trace id that is \
                            not 16 bytes, were not kept"
                .to_owned(),
        });
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}
