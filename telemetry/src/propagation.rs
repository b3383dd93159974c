//! W3C trace context (`traceparent`, `tracestate`) in gRPC metadata, so a
//! node agent's spans join the trace of the host step that called it.
//!
//! Client side: [`InjectContext`] is a tonic interceptor that writes the
//! current `tracing` span's context into every outgoing request. Server
//! side: [`ServerSpanLayer`] opens one span per RPC whose parent is the
//! caller's context, and runs the handler inside it.

use std::task::{Context as TaskContext, Poll};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::codegen::http;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Writes W3C fields into gRPC metadata (ASCII keys and values only; a
/// field that does not fit is skipped: tracing must not fail a call).
pub struct MetadataInjector<'a>(pub &'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Reads W3C fields from gRPC metadata.
pub struct MetadataExtractor<'a>(pub &'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// Reads W3C fields from the HTTP/2 headers a gRPC request arrives with.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Puts the current span's context into `metadata` (nothing when the span
/// is not recorded, e.g. with telemetry off).
pub fn inject_current(metadata: &mut MetadataMap) {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
    }
}

/// The caller's context carried by `metadata` (an empty context if none).
pub fn extract(metadata: &MetadataMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&MetadataExtractor(metadata))
}

/// Client interceptor: every request carries the calling span's context.
/// Interceptors run when the call is made, inside the caller's span.
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectContext;

impl tonic::service::Interceptor for InjectContext {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_current(req.metadata_mut());
        Ok(req)
    }
}

/// Server layer (`Server::builder().layer(ServerSpanLayer)`): one span per
/// RPC, named after the method, child of the caller's span. Work a handler
/// spawns must carry the span on (`.in_current_span()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerSpanLayer;

impl<S> tower_layer::Layer<S> for ServerSpanLayer {
    type Service = ServerSpan<S>;

    fn layer(&self, inner: S) -> ServerSpan<S> {
        ServerSpan { inner }
    }
}

/// The service [`ServerSpanLayer`] wraps around a server's routes.
#[derive(Debug, Clone)]
pub struct ServerSpan<S> {
    inner: S,
}

impl<S, B> tower_service::Service<http::Request<B>> for ServerSpan<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let span = server_span(&req);
        self.inner.call(req).instrument(span)
    }
}

fn server_span<B>(req: &http::Request<B>) -> tracing::Span {
    let path = req.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let span = tracing::info_span!(
        "rpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
    if parent.span().span_context().is_valid() {
        // Fails only when the span is disabled, and then there is nothing to link.
        let _ = span.set_parent(parent);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::tests::recording_subscriber;

    #[test]
    fn inject_then_extract_gives_back_the_current_span() {
        let (subscriber, _provider) = recording_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("step");
            let _entered = span.enter();
            let expected = span.context().span().span_context().clone();
            let mut metadata = MetadataMap::new();
            inject_current(&mut metadata);
            let header = metadata.get("traceparent").and_then(|v| v.to_str().ok());
            let header = header.map(str::to_owned).unwrap_or_default();
            assert!(header.starts_with("00-"), "traceparent: {header:?}");
            assert!(header.contains(&expected.trace_id().to_string()));
            let extracted = extract(&metadata);
            let got = extracted.span().span_context().clone();
            assert_eq!(got.trace_id(), expected.trace_id());
            assert_eq!(got.span_id(), expected.span_id());
            assert!(got.is_remote());
            assert!(got.is_sampled());
        });
    }

    #[test]
    fn nothing_is_injected_without_a_recorded_span() {
        let mut metadata = MetadataMap::new();
        inject_current(&mut metadata);
        assert!(metadata.get("traceparent").is_none());
    }

    #[test]
    fn a_server_span_is_the_child_of_the_incoming_traceparent() {
        let (subscriber, _provider) = recording_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
            let req = http::Request::builder()
                .uri("/hostctl.agent.v1.Provisioning/InstallPrerequisites")
                .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
                .body(())
                .unwrap_or_default();
            let span = server_span(&req);
            let context = span.context();
            let own = context.span().span_context().clone();
            assert_eq!(own.trace_id().to_string(), trace);
            assert_ne!(own.span_id().to_string(), "00f067aa0ba902b7");
        });
    }
}
