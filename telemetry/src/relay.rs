//! Node spans through the host. Node agents may not reach the collector
//! (and on a fresh host there may be none yet), but they always reach the
//! host daemon over mutual TLS. The daemon keeps what they send in a
//! [`SpanBuffer`] keyed by trace id; the run that owns a trace takes its
//! node spans at the end and sends them on with [`send`] and/or writes them
//! to its trace file.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
pub use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
pub use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message as _;

use crate::TelemetryError;

/// Spans the buffer holds across all traces before evicting the oldest trace.
pub const BUFFER_SPANS: usize = 50_000;

/// Recent relayed spans per trace id, bounded by a span count.
#[derive(Debug)]
pub struct SpanBuffer {
    inner: Mutex<Traces>,
    limit: usize,
}

#[derive(Debug, Default)]
struct Traces {
    by_trace: HashMap<Vec<u8>, Vec<ResourceSpans>>,
    /// Trace ids, oldest first (insertion order of their first span).
    order: VecDeque<Vec<u8>>,
    spans: usize,
}

impl Default for SpanBuffer {
    fn default() -> Self {
        SpanBuffer::new(BUFFER_SPANS)
    }
}

impl SpanBuffer {
    pub fn new(limit: usize) -> SpanBuffer {
        SpanBuffer {
            inner: Mutex::default(),
            limit,
        }
    }

    /// Files every span of `request` under its trace id, keeping its
    /// resource and scope; returns how many spans were stored.
    pub fn add(&self, request: ExportTraceServiceRequest) -> usize {
        let Ok(mut traces) = self.inner.lock() else {
            return 0;
        };
        let mut stored = 0;
        for resource_spans in request.resource_spans {
            for scope_spans in resource_spans.scope_spans {
                let mut per_trace: HashMap<Vec<u8>, ScopeSpans> = HashMap::new();
                for span in scope_spans.spans {
                    per_trace
                        .entry(span.trace_id.clone())
                        .or_insert_with(|| ScopeSpans {
                            scope: scope_spans.scope.clone(),
                            schema_url: scope_spans.schema_url.clone(),
                            spans: Vec::new(),
                        })
                        .spans
                        .push(span);
                }
                for (trace, scope) in per_trace {
                    stored += scope.spans.len();
                    traces.insert(
                        trace,
                        ResourceSpans {
                            resource: resource_spans.resource.clone(),
                            scope_spans: vec![scope],
                            schema_url: resource_spans.schema_url.clone(),
                        },
                    );
                }
            }
        }
        traces.evict_to(self.limit);
        stored
    }

    /// Removes and returns the spans of `trace_id`.
    pub fn take(&self, trace_id: &[u8]) -> Vec<ResourceSpans> {
        let Ok(mut traces) = self.inner.lock() else {
            return Vec::new();
        };
        let taken = traces.by_trace.remove(trace_id).unwrap_or_default();
        traces.order.retain(|t| t != trace_id);
        traces.spans -= span_count(&taken);
        taken
    }
}

impl Traces {
    fn insert(&mut self, trace: Vec<u8>, spans: ResourceSpans) {
        self.spans += span_count(std::slice::from_ref(&spans));
        let entry = self.by_trace.entry(trace.clone()).or_default();
        if entry.is_empty() {
            self.order.push_back(trace);
        }
        entry.push(spans);
    }

    /// Drops whole traces, oldest first, until at most `limit` spans remain.
    fn evict_to(&mut self, limit: usize) {
        while self.spans > limit {
            let Some(oldest) = self.order.pop_front() else {
                return;
            };
            let gone = self.by_trace.remove(&oldest).unwrap_or_default();
            self.spans -= span_count(&gone);
        }
    }
}

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
    use opentelemetry_proto::tonic::trace::v1::Span;

    fn request(trace: u8, spans: usize) -> ExportTraceServiceRequest {
        let spans = (0..spans)
            .map(|i| Span {
                trace_id: vec![trace; 16],
                span_id: vec![i as u8 + 1; 8],
                name: format!("s{i}"),
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn spans_are_taken_by_trace_id_once() {
        let buffer = SpanBuffer::new(100);
        assert_eq!(buffer.add(request(1, 3)), 3);
        buffer.add(request(2, 2));
        assert_eq!(span_count(&buffer.take(&[1; 16])), 3);
        assert!(buffer.take(&[1; 16]).is_empty());
        assert_eq!(span_count(&buffer.take(&[2; 16])), 2);
    }

    #[test]
    fn the_oldest_trace_goes_first_when_full() {
        let buffer = SpanBuffer::new(4);
        buffer.add(request(1, 3));
        buffer.add(request(2, 3));
        assert!(buffer.take(&[1; 16]).is_empty());
        assert_eq!(span_count(&buffer.take(&[2; 16])), 3);
    }

    #[test]
    fn encoding_round_trips() {
        let spans = request(7, 2).resource_spans;
        let back = decode(&encode(spans.clone())).ok();
        assert_eq!(back, Some(spans));
    }
}
