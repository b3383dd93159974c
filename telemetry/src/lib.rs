//! Tracing for both agents, shared so the host and the node agents agree on
//! how a provisioning run becomes one trace (see `docs/tracing.md`).
//!
//! - [`config`]: what to export where, from the standard `OTEL_*` variables.
//! - [`pipeline`]: the OpenTelemetry layer for a `tracing` subscriber; export
//!   runs on its own thread with a bounded queue so it can never hold up or
//!   fail the work being traced.
//! - [`export`]: exporter wrappers (failure counting, deferred connection,
//!   in-memory collection for trace files).
//! - [`propagation`]: W3C `traceparent` in gRPC metadata, client and server.
//! - [`relay`]: the host's buffer of spans node agents send it, and the
//!   plain OTLP client that forwards them.
//! - [`file`]: OTLP JSON trace files (`hostctl up --trace-file`).
//! - [`error_chain`]: an error with its causes on one line, for logs.

pub mod config;
pub mod error_chain;
pub mod export;
pub mod file;
pub mod pipeline;
pub mod propagation;
pub mod relay;

pub use config::TelemetryConfig;
pub use opentelemetry_proto::tonic::collector::trace::v1 as otlp;
pub use pipeline::{Pipeline, RelayTarget, ShutdownSummary};
pub use propagation::{InjectContext, ServerSpanLayer};

/// Why telemetry could not be set up or a trace could not be written. None
/// of these is allowed to stop provisioning: callers report and carry on.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
    Exporter { endpoint: String, reason: String },
    #[error("{path}: {source}")]
    File {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not OTLP JSON: {source}")]
    Json {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("not an OTLP export request: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("cannot send spans to {endpoint}: {reason}")]
    Send { endpoint: String, reason: String },
}
