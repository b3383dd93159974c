//! Node spans through the host. Node agents may not reach the collector
//! (and on a fresh host there may be none yet), but they always reach the
//! host daemon over mutual TLS. The daemon keeps what they send in a
//! [`SpanBuffer`] keyed by trace id and bounded in bytes, per node and in
//! total; the run that owns a trace takes its node spans at the end and
//! sends them on with [`send`] and/or writes them to its trace file.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
pub use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
pub use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message as _;

use crate::TelemetryError;

mod buffer;
mod chunk;

pub use buffer::{
    Added, Budget, NODE_BUDGET_BYTES, PIECE_OVERHEAD_BYTES, SpanBuffer, TOTAL_BUDGET_BYTES, Usage,
};

/// Spans in `resource_spans`.
pub fn span_count(resource_spans: &[ResourceSpans]) -> usize {
    resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// Encodes spans for the Control socket (protobuf `ExportTraceServiceRequest`).
pub fn encode(resource_spans: Vec<ResourceSpans>) -> Vec<u8> {
    ExportTraceServiceRequest { resource_spans }.encode_to_vec()
}

/// The inverse of [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Vec<ResourceSpans>, TelemetryError> {
    Ok(ExportTraceServiceRequest::decode(bytes)?.resource_spans)
}

/// Sends already-encoded spans to an OTLP gRPC collector, bounded by
/// `timeout` (connection included).
pub async fn send(
    endpoint: &str,
    resource_spans: Vec<ResourceSpans>,
    timeout: Duration,
) -> Result<(), TelemetryError> {
    let fail = |reason: String| TelemetryError::Send {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let attempt = async {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| fail(e.to_string()))?
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|e| fail(e.to_string()))?;
        TraceServiceClient::new(channel)
            .export(ExportTraceServiceRequest { resource_spans })
            .await
            .map_err(|s| fail(format!("{:?}: {}", s.code(), s.message())))?;
        Ok(())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use buffer::tests::request;

    #[test]
    fn encoding_round_trips() {
        let spans = request(7, 2, 2).resource_spans;
        let back = decode(&encode(spans.clone())).ok();
        assert_eq!(back, Some(spans));
    }
}
