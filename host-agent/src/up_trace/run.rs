//! One `hostctl up` as one trace: the root span, the trace id printed at
//! the start and the end, and at the end the node spans the daemon relayed
//! merged in (forwarded to the collector, written to `--trace-file`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ::telemetry::{Pipeline, TelemetryConfig, file, relay};
use opentelemetry::trace::{TraceContextExt as _, TraceId};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::daemon::ControlClient;

/// How long the host's last spans get to reach the collector at the end.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);
/// Bound on forwarding the node spans to the collector.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// Node agents batch spans for [`NODE_BATCH_DELAY`]; the end of a run
/// waits until no new node span arrived for this long (at most
/// [`NODE_WAIT_MAX`]).
const NODE_SETTLE: Duration = Duration::from_millis(1200);
const NODE_WAIT_MAX: Duration = Duration::from_secs(4);
const NODE_POLL: Duration = Duration::from_millis(300);
/// What node agents use as their batch delay (kept short: their spans are
/// few and the run waits for them).
pub const NODE_BATCH_DELAY: Duration = Duration::from_millis(500);

/// The tracing of one run; inert when telemetry is off.
pub struct UpTrace {
    pipeline: Option<Pipeline>,
    root: tracing::Span,
    trace_id: Option<TraceId>,
    trace_file: Option<PathBuf>,
    socket: PathBuf,
    to_stdout: bool,
}

impl UpTrace {
    /// Sets up export (from `OTEL_*`, else the topology's
    /// `telemetry.otlpEndpoint` given as `fallback_endpoint`; `trace_file`
    /// keeps spans for a file), installs the subscriber, opens the root span
    /// and prints its trace id. Must run inside the tokio runtime.
    pub fn start(
        socket: PathBuf,
        trace_file: Option<PathBuf>,
        to_stdout: bool,
        fallback_endpoint: Option<String>,
    ) -> UpTrace {
        let mut config = TelemetryConfig::from_env(fallback_endpoint);
        config.collect = trace_file.is_some();
        let pipeline = Pipeline::start("hostctl", &config).unwrap_or_else(|e| {
            eprintln!("tracing off: {e}");
            None
        });
        // One subscriber: the CLI's stderr logger, plus the trace layer
        // when there is somewhere to send spans.
        let subscriber = tracing_subscriber::registry()
            .with(crate::logging::stderr_layer(crate::logging::CLI_DEFAULT))
            .with(pipeline.as_ref().map(|p| p.layer()));
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            eprintln!("tracing off: a subscriber is already installed");
        }
        let root = tracing::info_span!(
            "hostctl up",
            hostctl.version = env!("CARGO_PKG_VERSION"),
            outcome = tracing::field::Empty,
            error = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let context = root.context().span().span_context().clone();
        let trace_id = context.is_valid().then(|| context.trace_id());
        let trace = UpTrace {
            pipeline,
            root,
            trace_id,
            trace_file,
            socket,
            to_stdout,
        };
        if let Some(id) = trace.trace_id {
            trace.say(format!("trace {id}: hostctl up started"));
        }
        trace
    }

    /// The root span, to run `up` in.
    pub fn root(&self) -> tracing::Span {
        self.root.clone()
    }

    /// Ends the root span with the run's outcome, merges the node spans,
    /// writes the trace file, flushes within a deadline and reports lost
    /// spans in one line. Never fails: problems are printed.
    pub async fn finish<T>(self, result: &anyhow::Result<T>) {
        let UpTrace {
            pipeline,
            root,
            trace_id,
            trace_file,
            socket,
            to_stdout,
        } = self;
        match result {
            Ok(_) => root.record("outcome", "done"),
            Err(e) => {
                root.record("outcome", "failed");
                root.record("error", format!("{e:#}").as_str());
                root.record("otel.status_code", "ERROR")
            }
        };
        drop(root);
        let (Some(pipeline), Some(trace_id)) = (pipeline, trace_id) else {
            return;
        };
        let id = trace_id.to_bytes();
        let nodes = node_spans(&socket, &id).await;
        let node_count = relay::span_count(&nodes);
        if let (Some(endpoint), false) = (pipeline.endpoint(), nodes.is_empty())
            && let Err(e) = relay::send(endpoint, nodes.clone(), FORWARD_TIMEOUT).await
        {
            pipeline.dropped().add(node_count, &e);
        }
        let mut spans = file::resource_spans(pipeline.take_collected(), pipeline.resource());
        spans.extend(nodes);
        file::only_trace(&mut spans, &id);
        let total = relay::span_count(&spans);
        let summary = pipeline.shutdown_async(SHUTDOWN_DEADLINE).await;
        let say = |text: String| say(to_stdout, text);
        if let Some(path) = &trace_file {
            match file::write(path, spans) {
                Ok(()) => say(format!(
                    "trace {trace_id}: {total} span(s) ({node_count} from nodes) written to {}",
                    path.display()
                )),
                Err(e) => eprintln!("trace file not written: {e}"),
            }
        }
        if let Some(line) = summary.line() {
            eprintln!("{line}");
        }
        say(format!("trace {trace_id}: hostctl up finished"));
    }

    fn say(&self, text: String) {
        say(self.to_stdout, text);
    }
}

/// Trace notes go with the progress output: stdout for tables, stderr when
/// stdout carries JSON/YAML.
fn say(to_stdout: bool, text: String) {
    if to_stdout {
        let _ = crate::stdout::line(&text);
    } else {
        eprintln!("{text}");
    }
}

/// The spans node agents relayed for `trace_id`, gathered until none has
/// arrived for [`NODE_SETTLE`] (their batches lag the calls that caused
/// them). Empty when no daemon answers.
async fn node_spans(socket: &std::path::Path, trace_id: &[u8]) -> Vec<relay::ResourceSpans> {
    let Ok(mut control) = ControlClient::connect(socket).await else {
        return Vec::new();
    };
    let started = Instant::now();
    let mut last_new = Instant::now();
    let mut spans = Vec::new();
    while started.elapsed() < NODE_WAIT_MAX && last_new.elapsed() < NODE_SETTLE {
        tokio::time::sleep(NODE_POLL).await;
        let Ok(bytes) = control.take_trace(trace_id).await else {
            break;
        };
        match relay::decode(&bytes) {
            Ok(more) if !more.is_empty() => {
                spans.extend(more);
                last_new = Instant::now();
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("node spans unreadable: {e}");
                break;
            }
        }
    }
    spans
}
