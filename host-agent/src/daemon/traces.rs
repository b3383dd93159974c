//! The nodes' span relay: the standard OTLP `TraceService/Export` served on
//! the mutual-TLS Host listener, so a node agent exports with the stock
//! OTLP exporter and its own certificate. Spans are kept per trace id in a
//! bounded buffer ([`::telemetry::relay::SpanBuffer`]) until the run owning
//! the trace takes them over the Control socket (docs/tracing.md).

use std::sync::Arc;

use ::telemetry::otlp::trace_service_server::{TraceService, TraceServiceServer};
use ::telemetry::otlp::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tonic::{Request, Response, Status};

use super::authz::{self, OTLP_EXPORT};
use super::state::Shared;

/// Largest span batch accepted from a node (the exporter sends 512 spans
/// per batch by default, far below this).
const MAX_EXPORT_BYTES: usize = 8 * 1024 * 1024;

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
        let caller = authz::authorize(&req, OTLP_EXPORT)?;
        let stored = self.shared.traces.add(req.into_inner());
        tracing::debug!(node = %caller.name, spans = stored, "relayed spans buffered");
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}
