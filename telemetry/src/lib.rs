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
//! - [`metrics`]: the Prometheus text exposition and the mutual-TLS
//!   `/metrics` server both agents serve it with.
//! - [`error_chain`]: an error with its causes on one line, for logs.
#![cfg_attr(
    test,
    allow(clippy::disallowed_methods, reason = "unit tests write fixtures")
)]
#![deny(missing_docs)]

pub mod config;
pub mod error_chain;
pub mod export;
pub mod file;
pub mod metrics;
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
    /// The OTLP gRPC exporter could not be built for the endpoint (usually
    /// a malformed URL in `OTEL_EXPORTER_OTLP_ENDPOINT`); no spans go there.
    #[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
    Exporter {
        /// The endpoint as configured or passed to `connect`.
        endpoint: String,
        /// The SDK's error, as text.
        reason: String,
    },
    /// A trace file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The trace file (for a write, the final name, never the temporary).
        path: std::path::PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// A trace file read back is not OTLP JSON (or, when writing, the spans
    /// could not be encoded as JSON).
    #[error("{path}: not OTLP JSON: {source}")]
    Json {
        /// The trace file.
        path: std::path::PathBuf,
        /// serde_json's error, with line and column for a bad file.
        #[source]
        source: serde_json::Error,
    },
    /// Bytes that should hold a protobuf `ExportTraceServiceRequest` do not
    /// ([`relay::decode`]: the node spans a run takes from the daemon over
    /// its Control socket).
    #[error("not an OTLP export request: {0}")]
    Decode(#[from] prost::DecodeError),
    /// Forwarding spans to a collector failed: no connection, a refusal, or
    /// no answer within the timeout. The spans are not retried.
    #[error("cannot send spans to {endpoint}: {reason}")]
    Send {
        /// The collector's OTLP gRPC endpoint.
        endpoint: String,
        /// What went wrong: the transport error, the gRPC status code and
        /// message, or the timeout that ran out.
        reason: String,
    },
}
