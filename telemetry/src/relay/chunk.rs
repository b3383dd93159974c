//! Splitting one export request into per-trace chunks of encoded bytes.
//!
//! The buffer keeps spans encoded, not decoded: what it counts against a
//! node's budget is then what it holds (a decoded `Span` with a tiny
//! encoding occupies several times its encoded size), and a trace is
//! handed back by concatenating its chunks, each of which is one
//! `resource_spans` field of an `ExportTraceServiceRequest`.
//!
//! Every chunk repeats its resource and scope, as a `ResourceSpans` of its
//! own must. Sizes are computed before anything is encoded and the resource
//! and scope are encoded once per request entry, so a request of many
//! traces under one large resource costs no more than the byte budget it
//! is allowed, instead of a copy of the resource per trace.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// A trace id as OTLP defines it: exactly 16 bytes.
pub type TraceId = [u8; 16];

/// Field keys (field number << 3 | wire type 2, length-delimited) of the
/// OTLP messages written here. They fit in one byte.
/// `ExportTraceServiceRequest.resource_spans`, `ResourceSpans.resource` and
/// `ScopeSpans.scope` are field 1.
const FIELD_1: u8 = 1 << 3 | 2;
/// `ResourceSpans.scope_spans`, `ScopeSpans.spans`.
const FIELD_2: u8 = 2 << 3 | 2;
/// `ResourceSpans.schema_url`, `ScopeSpans.schema_url`.
const FIELD_3: u8 = 3 << 3 | 2;

/// The spans of one trace from one request entry, encoded as one
/// `resource_spans` field (key and length included).
#[derive(Debug)]
pub struct Chunk {
    pub trace: TraceId,
    pub bytes: Vec<u8>,
    pub spans: usize,
}

/// What [`split`] made of a request.
#[derive(Debug, Default)]
pub struct Split {
    pub chunks: Vec<Chunk>,
    /// Spans left out: a trace id that is not 16 bytes, or over `max_bytes`.
    pub refused: usize,
}

/// Splits `request` by trace id into chunks of at most `max_bytes` in all,
/// in the order their traces first appear; spans that would go over are
/// refused (counted, not encoded).
pub fn split(request: ExportTraceServiceRequest, max_bytes: usize) -> Split {
    let mut out = Split::default();
    let mut used = 0usize;
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| message_field(FIELD_1, r))
            .unwrap_or_default();
        let resource_schema = string_field(&resource_spans.schema_url);
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans
                .scope
                .as_ref()
                .map(|s| message_field(FIELD_1, s))
                .unwrap_or_default();
            let scope_schema = string_field(&scope_spans.schema_url);
            for group in by_trace(scope_spans.spans, &mut out.refused) {
                let scope_body = scope.len() + group.bytes + scope_schema.len();
                let resource_body = resource.len()
                    + 1
                    + prost::length_delimiter_len(scope_body)
                    + scope_body
                    + resource_schema.len();
                let total = 1 + prost::length_delimiter_len(resource_body) + resource_body;
                if total > max_bytes.saturating_sub(used) {
                    out.refused += group.spans.len();
                    continue;
                }
                let mut bytes = Vec::with_capacity(total);
                put_header(&mut bytes, FIELD_1, resource_body);
                bytes.extend_from_slice(&resource);
                put_header(&mut bytes, FIELD_2, scope_body);
                bytes.extend_from_slice(&scope);
                for span in &group.spans {
                    put_message(&mut bytes, FIELD_2, span);
                }
                bytes.extend_from_slice(&scope_schema);
                bytes.extend_from_slice(&resource_schema);
                debug_assert_eq!(bytes.len(), total, "chunk size computed wrongly");
                used += total;
                out.chunks.push(Chunk {
                    trace: group.trace,
                    bytes,
                    spans: group.spans.len(),
                });
            }
        }
    }
    out
}

/// The spans of one trace within one `ScopeSpans`, with the encoded size
/// of their `spans` fields.
struct Group {
    trace: TraceId,
    spans: Vec<Span>,
    bytes: usize,
}

/// Groups `spans` by trace id in order of first appearance; a span whose
/// trace id is not 16 bytes is refused (it could never be taken, and an
/// arbitrary-length id would be a key of arbitrary size).
fn by_trace(spans: Vec<Span>, refused: &mut usize) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    for span in spans {
        let Ok(trace) = TraceId::try_from(span.trace_id.as_slice()) else {
            *refused += 1;
            continue;
        };
        let len = span.encoded_len();
        let field = 1 + prost::length_delimiter_len(len) + len;
        let i = *index.entry(trace).or_insert_with(|| {
            groups.push(Group {
                trace,
                spans: Vec::new(),
                bytes: 0,
            });
            groups.len() - 1
        });
        groups[i].bytes += field;
        groups[i].spans.push(span);
    }
    groups
}

/// `msg` as a length-delimited field with the one-byte `key`.
fn message_field(key: u8, msg: &impl Message) -> Vec<u8> {
    let len = msg.encoded_len();
    let mut out = Vec::with_capacity(1 + prost::length_delimiter_len(len) + len);
    put_message(&mut out, key, msg);
    out
}

/// `s` as field 3 (`schema_url`); nothing for the empty string, as proto3
/// encodes it.
fn string_field(s: &str) -> Vec<u8> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(1 + prost::length_delimiter_len(s.len()) + s.len());
    put_header(&mut out, FIELD_3, s.len());
    out.extend_from_slice(s.as_bytes());
    out
}

fn put_message(out: &mut Vec<u8>, key: u8, msg: &impl Message) {
    put_header(out, key, msg.encoded_len());
    // Encoding fails only for a buffer that cannot grow; a Vec always can.
    let _ = msg.encode(out);
}

/// A field key and a varint length.
fn put_header(out: &mut Vec<u8>, key: u8, mut len: usize) {
    out.push(key);
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    fn span(trace: u8, name: &str) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![1; 8],
            name: name.into(),
            ..Default::default()
        }
    }

    fn resource(big: usize) -> Resource {
        Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(crate::relay::any_value::Value::StringValue("x".repeat(big))),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn chunks_decode_to_one_resource_spans_per_trace_with_resource_and_scope() {
        let scope = InstrumentationScope {
            name: "node-agent".into(),
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource(300)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope.clone()),
                    spans: vec![span(1, "a"), span(2, "b"), span(1, "c")],
                    schema_url: "s".into(),
                }],
                schema_url: "r".into(),
            }],
        };
        let split = split(request, usize::MAX);
        assert_eq!(split.refused, 0);
        let traces: Vec<(u8, usize)> = split.chunks.iter().map(|c| (c.trace[0], c.spans)).collect();
        assert_eq!(traces, [(1, 2), (2, 1)]);
        let mut back = ExportTraceServiceRequest::default();
        back.merge(split.chunks[0].bytes.as_slice()).ok();
        let expected = ResourceSpans {
            resource: Some(resource(300)),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope),
                spans: vec![span(1, "a"), span(1, "c")],
                schema_url: "s".into(),
            }],
            schema_url: "r".into(),
        };
        assert_eq!(back.resource_spans, [expected]);
    }

    #[test]
    fn bad_trace_ids_and_what_goes_over_the_byte_limit_are_refused_unencoded() {
        let mut spans: Vec<Span> = (0..100).map(|t| span(t, "s")).collect();
        spans.push(Span {
            trace_id: vec![1; 4000],
            ..Default::default()
        });
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource(10_000)),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        // Each chunk repeats the 10 KB resource: only 4 fit in 50 KB.
        let split = split(request, 50_000);
        assert_eq!(split.chunks.len(), 4);
        assert_eq!(split.refused, 97);
        assert!(split.chunks.iter().map(|c| c.bytes.len()).sum::<usize>() <= 50_000);
    }
}
