//! What to export and where, read from the standard OpenTelemetry variables
//! so hostctl behaves like every other OTLP-instrumented tool.

use std::time::Duration;

/// The collector endpoint (OTLP over gRPC), e.g. `http://127.0.0.1:4317`.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Overrides the service name each agent otherwise reports.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// Spans waiting for export; beyond this they are dropped (never waited for).
pub const DEFAULT_QUEUE: usize = 4096;
/// One export attempt's bound: a black-holed collector costs at most this
/// per batch, on the exporter's own thread.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Where to export; `None` exports nothing to a collector.
    pub endpoint: Option<String>,
    /// Keep finished spans in memory (for an OTLP JSON file written at the end).
    pub collect: bool,
    /// Bound of the export queue.
    pub queue: usize,
    /// Bound of one export call.
    pub export_timeout: Duration,
    /// How long finished spans wait to be batched.
    pub batch_delay: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            endpoint: None,
            collect: false,
            queue: DEFAULT_QUEUE,
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
            batch_delay: Duration::from_secs(1),
        }
    }
}

impl TelemetryConfig {
    /// The endpoint from `OTEL_EXPORTER_OTLP_ENDPOINT`, or `fallback` (a
    /// setting of the caller's own, e.g. from the topology) when unset.
    pub fn from_env(fallback: Option<String>) -> TelemetryConfig {
        TelemetryConfig {
            endpoint: endpoint_from_env().or(fallback),
            ..TelemetryConfig::default()
        }
    }

    /// Whether anything would be recorded at all; when not, callers install
    /// no OpenTelemetry layer and no context is propagated.
    pub fn enabled(&self) -> bool {
        self.endpoint.is_some() || self.collect
    }
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` when set and not blank: callers look
/// for defaults of their own only without it.
pub fn endpoint_from_env() -> Option<String> {
    #[expect(
        clippy::disallowed_methods,
        reason = "the standard OTEL_* variables, read in telemetry's one configuration module"
    )]
    std::env::var(ENDPOINT_ENV)
        .ok()
        .filter(|e| !e.trim().is_empty())
}

/// The resource every span carries: `OTEL_RESOURCE_ATTRIBUTES` and
/// `OTEL_SERVICE_NAME` from the environment (the SDK's detectors), with
/// `default_service` when no service name is given there.
pub fn resource(default_service: &str) -> opentelemetry_sdk::Resource {
    let builder = opentelemetry_sdk::Resource::builder();
    #[expect(
        clippy::disallowed_methods,
        reason = "the standard OTEL_* variables, read in telemetry's one configuration module"
    )]
    let named = std::env::var_os(SERVICE_NAME_ENV).is_some();
    if named {
        builder.build()
    } else {
        builder
            .with_service_name(default_service.to_owned())
            .build()
    }
}
