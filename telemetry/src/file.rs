//! OTLP JSON trace files: one `ExportTraceServiceRequest` in the JSON form
//! of the OTLP specification (hex ids, camelCase), which Tempo, Jaeger and
//! the OpenTelemetry Collector's `otlpjsonfile` receiver import.

use std::path::Path;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

use crate::TelemetryError;

/// This process's finished spans in OTLP form, under `resource`.
pub fn resource_spans(spans: Vec<SpanData>, resource: &Resource) -> Vec<ResourceSpans> {
    if spans.is_empty() {
        return Vec::new();
    }
    group_spans_by_resource_and_scope(spans, &ResourceAttributesWithSchema::from(resource))
}

/// Keeps only the spans of `trace_id` (a run's file holds its own trace).
pub fn only_trace(resource_spans: &mut Vec<ResourceSpans>, trace_id: &[u8]) {
    for r in resource_spans.iter_mut() {
        for s in &mut r.scope_spans {
            s.spans.retain(|span| span.trace_id == trace_id);
        }
        r.scope_spans.retain(|s| !s.spans.is_empty());
    }
    resource_spans.retain(|r| !r.scope_spans.is_empty());
}

/// Writes `resource_spans` to `path` as OTLP JSON, atomically
/// ([`fsio::write_atomic`]), so a reader never sees half a trace.
pub fn write(path: &Path, resource_spans: Vec<ResourceSpans>) -> Result<(), TelemetryError> {
    let request = ExportTraceServiceRequest { resource_spans };
    let json = serde_json::to_vec_pretty(&request).map_err(|source| TelemetryError::Json {
        path: path.to_owned(),
        source,
    })?;
    fsio::write_atomic(path, &json, 0o644).map_err(|e| TelemetryError::File {
        path: path.to_owned(),
        source: e.source,
    })
}

/// Reads an OTLP JSON trace file back.
pub fn read(path: &Path) -> Result<ExportTraceServiceRequest, TelemetryError> {
    let bytes = std::fs::read(path).map_err(|source| TelemetryError::File {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| TelemetryError::Json {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::tests::finished_span;

    #[test]
    fn a_written_trace_reads_back_with_hex_ids() {
        let dir = std::env::temp_dir().join(format!("telemetry-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("trace.json");
        let resource = Resource::builder_empty()
            .with_service_name("hostctl")
            .build();
        let spans = resource_spans(vec![finished_span()], &resource);
        assert!(write(&path, spans).is_ok());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            text.contains("\"traceId\": \"01010101010101010101010101010101\""),
            "{text}"
        );
        let back = read(&path).map(|r| r.resource_spans);
        let back = back.unwrap_or_default();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].scope_spans[0].spans[0].name, "step");
        assert_eq!(back[0].scope_spans[0].spans[0].trace_id, vec![1; 16]);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn only_the_run_s_trace_is_kept() {
        let resource = Resource::builder_empty().build();
        let mut other = finished_span();
        other.span_context = opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes([9; 16]),
            opentelemetry::trace::SpanId::from_bytes([3; 8]),
            opentelemetry::trace::TraceFlags::SAMPLED,
            false,
            Default::default(),
        );
        let mut spans = resource_spans(vec![finished_span(), other], &resource);
        only_trace(&mut spans, &[9; 16]);
        assert_eq!(crate::relay::span_count(&spans), 1);
    }
}
