//! The OpenTelemetry side of a `tracing` subscriber.
//!
//! Export never holds up the traced work: finished spans go into a bounded
//! queue drained by the SDK's batch thread (a full queue drops spans rather
//! than waiting), each export call is bounded, failures are counted by
//! [`crate::export::Counting`] and summarised once by
//! [`ShutdownSummary::line`], and [`Pipeline::shutdown`] has a deadline so a
//! dead collector cannot hang the end of a run.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_otlp::WithTonicConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::TelemetryError;
use crate::config::{self, TelemetryConfig};
use crate::export::{Collect, Counting, Deferred, DeferredSlot, DropCounter};

/// One process's tracer provider and what it needs at the end of a run.
pub struct Pipeline {
    provider: SdkTracerProvider,
    service: String,
    resource: Resource,
    endpoint: Option<String>,
    dropped: DropCounter,
    collect: Option<Collect>,
    deferred: Option<DeferredSlot>,
    export_timeout: Duration,
}

/// Where a relayed pipeline's spans go; [`RelayTarget::connect`] replaces
/// the destination for every later batch (spans already handed to the old
/// exporter finish there).
#[derive(Clone)]
pub struct RelayTarget {
    slot: DeferredSlot,
    resource: Resource,
    export_timeout: Duration,
}

impl RelayTarget {
    /// Sends later spans to `endpoint` over `tls`. Must run inside a tokio
    /// runtime (the channel is created lazily there).
    pub fn connect(
        &self,
        endpoint: &str,
        tls: tonic::transport::ClientTlsConfig,
    ) -> Result<(), TelemetryError> {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.to_owned())
            .with_timeout(self.export_timeout)
            .with_tls_config(tls)
            .build()
            .map_err(|e| TelemetryError::Exporter {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            })?;
        exporter.set_resource(&self.resource);
        self.slot.set(exporter);
        Ok(())
    }
}

/// How export went, for the one line a run prints about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownSummary {
    /// Spans that never reached their destination (failed batches, and for
    /// trace files those beyond the span limit); 0 when export went well.
    pub dropped: u64,
    /// Why the first lost batch was lost; `None` when nothing was lost.
    pub first_error: Option<String>,
    /// Where spans were exported: the configured collector, or for a
    /// relayed pipeline the endpoint given to `connect`; `None` when spans
    /// went nowhere but a trace file (or never got a destination).
    pub endpoint: Option<String>,
}

impl ShutdownSummary {
    /// The single report of lost spans (`None` when none were lost).
    pub fn line(&self) -> Option<String> {
        if self.dropped == 0 {
            return None;
        }
        let to = self.endpoint.as_deref().unwrap_or("the collector");
        let why = self.first_error.as_deref().unwrap_or("unknown");
        Some(format!(
            "tracing: {} span(s) dropped, not exported to {to} (first error: {why})",
            self.dropped
        ))
    }
}

fn batch<E: SpanExporter + 'static>(exporter: E, config: &TelemetryConfig) -> BatchSpanProcessor {
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(config.queue)
        .with_scheduled_delay(config.batch_delay)
        .build();
    BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build()
}

impl Pipeline {
    /// For a process that starts traces (the host CLI): every root span is
    /// recorded. `None` when `config` exports nowhere, so callers install
    /// no layer and propagate nothing. Must run inside a tokio runtime when
    /// an endpoint is set (the gRPC channel is created lazily there).
    pub fn start(
        service: &str,
        config: &TelemetryConfig,
    ) -> Result<Option<Pipeline>, TelemetryError> {
        if !config.enabled() {
            return Ok(None);
        }
        let resource = config::resource(service);
        let dropped = DropCounter::default();
        let mut builder = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        if let Some(endpoint) = &config.endpoint {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(config.export_timeout)
                .build()
                .map_err(|e| TelemetryError::Exporter {
                    endpoint: endpoint.clone(),
                    reason: e.to_string(),
                })?;
            builder = builder
                .with_span_processor(batch(Counting::new(exporter, dropped.clone()), config));
        }
        let collect = config.collect.then(|| Collect::new(dropped.clone()));
        if let Some(c) = &collect {
            builder = builder.with_simple_exporter(c.clone());
        }
        Ok(Some(Pipeline {
            provider: builder.build(),
            service: service.to_owned(),
            resource,
            endpoint: config.endpoint.clone(),
            dropped,
            collect,
            deferred: None,
            export_timeout: config.export_timeout,
        }))
    }

    /// For a process that only continues traces (a node agent): a span is
    /// recorded only when the caller's was (parent-based, roots off), so an
    /// agent records nothing unless a traced host asks it something. Spans
    /// go to the destination given later to [`Pipeline::connect`].
    pub fn relayed(service: &str, config: &TelemetryConfig) -> Pipeline {
        let resource = config::resource(service);
        let dropped = DropCounter::default();
        let deferred = Deferred::default();
        let slot = deferred.slot();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .with_span_processor(batch(Counting::new(deferred, dropped.clone()), config))
            .build();
        Pipeline {
            provider,
            service: service.to_owned(),
            resource,
            endpoint: None,
            dropped,
            collect: None,
            deferred: Some(slot),
            export_timeout: config.export_timeout,
        }
    }

    /// Points a [`Pipeline::relayed`] pipeline at `endpoint` (OTLP gRPC over
    /// `tls`, e.g. the host's mutual-TLS listener with the node's
    /// certificate). Must run inside a tokio runtime. Does nothing for a
    /// pipeline that is not relayed.
    pub fn connect(
        &mut self,
        endpoint: &str,
        tls: tonic::transport::ClientTlsConfig,
    ) -> Result<(), TelemetryError> {
        let Some(target) = self.relay_target() else {
            return Ok(());
        };
        target.connect(endpoint, tls)?;
        self.endpoint = Some(endpoint.to_owned());
        Ok(())
    }

    /// A handle that re-points a relayed pipeline from any task, e.g. with a
    /// renewed certificate (`None` for a pipeline that is not relayed).
    pub fn relay_target(&self) -> Option<RelayTarget> {
        Some(RelayTarget {
            slot: self.deferred.clone()?,
            resource: self.resource.clone(),
            export_timeout: self.export_timeout,
        })
    }

    /// The layer to add to the process's subscriber. Only INFO-and-above
    /// spans outside the export path itself are recorded (tonic, hyper and
    /// the SDK would otherwise trace their own exports).
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let tracer = self.provider.tracer(self.service.clone());
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.level() <= &tracing::Level::INFO && !is_export_path(meta.target())
            }))
    }

    /// The resource this process's spans carry.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// The spans collected for a trace file so far (empty without `collect`).
    pub fn take_collected(&self) -> Vec<SpanData> {
        self.collect.as_ref().map(Collect::take).unwrap_or_default()
    }

    /// The counter of lost spans (also fed by callers that forward spans).
    pub fn dropped(&self) -> DropCounter {
        self.dropped.clone()
    }

    /// Where spans are exported, if anywhere.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Flushes what is queued, waiting at most `deadline`, and reports what
    /// was lost. Blocks the calling thread: from async code, use
    /// [`Pipeline::shutdown_async`].
    pub fn shutdown(self, deadline: Duration) -> ShutdownSummary {
        if let Err(e) = self.provider.shutdown_with_timeout(deadline) {
            tracing::debug!("tracing shutdown: {e}");
        }
        ShutdownSummary {
            dropped: self.dropped.dropped(),
            first_error: self.dropped.first_error(),
            endpoint: self.endpoint,
        }
    }

    /// [`Pipeline::shutdown`] off the async threads (the exporter may need
    /// them to finish its last batch).
    pub async fn shutdown_async(self, deadline: Duration) -> ShutdownSummary {
        let counter = self.dropped.clone();
        let endpoint = self.endpoint.clone();
        match tokio::task::spawn_blocking(move || self.shutdown(deadline)).await {
            Ok(summary) => summary,
            Err(_) => ShutdownSummary {
                dropped: counter.dropped(),
                first_error: counter.first_error(),
                endpoint,
            },
        }
    }
}

/// Targets whose spans belong to exporting itself.
fn is_export_path(target: &str) -> bool {
    ["opentelemetry", "tonic", "hyper", "h2", "tower"]
        .iter()
        .any(|p| target.starts_with(p))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use std::time::SystemTime;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// A subscriber that records every span (nothing exported).
    pub(crate) fn recording_subscriber() -> (impl Subscriber + Send + Sync, SdkTracerProvider) {
        let provider = SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        (tracing_subscriber::registry().with(layer), provider)
    }

    /// A finished span as an exporter receives it.
    pub(crate) fn finished_span() -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes([1; 16]),
                SpanId::from_bytes([2; 8]),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "step".into(),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes: vec![opentelemetry::KeyValue::new("node", "a")],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn telemetry_is_off_without_endpoint_or_file() {
        let config = TelemetryConfig::default();
        assert!(matches!(Pipeline::start("t", &config), Ok(None)));
    }

    #[test]
    fn the_summary_line_appears_only_when_spans_were_lost() {
        let mut summary = ShutdownSummary {
            dropped: 0,
            first_error: None,
            endpoint: Some("http://127.0.0.1:9".into()),
        };
        assert_eq!(summary.line(), None);
        summary.dropped = 7;
        summary.first_error = Some("connection refused".into());
        let line = summary.line().unwrap_or_default();
        assert!(line.contains("7 span(s) dropped"), "{line}");
        assert!(line.contains("127.0.0.1:9") && line.contains("connection refused"));
    }

    #[tokio::test]
    async fn a_dead_collector_costs_spans_not_time() {
        let config = TelemetryConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            batch_delay: Duration::from_millis(50),
            ..TelemetryConfig::default()
        };
        let pipeline = Pipeline::start("t", &config).ok().flatten();
        let Some(pipeline) = pipeline else {
            panic!("an endpoint enables the pipeline");
        };
        let subscriber = tracing_subscriber::registry().with(pipeline.layer());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5 {
                let _span = tracing::info_span!("step").entered();
            }
        });
        let started = std::time::Instant::now();
        let summary = pipeline.shutdown_async(Duration::from_secs(2)).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(summary.dropped, 5, "{summary:?}");
        assert!(summary.line().is_some());
    }
}
