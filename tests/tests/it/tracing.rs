//! Provisioning traces end to end (docs/tracing.md): `hostctl up` with the
//! local provider exports one trace to an in-process OTLP gRPC receiver;
//! node-agent spans arrive through the daemon's relay as children of the
//! host step that called them; `--trace-file` reads back as OTLP JSON; a
//! dead collector costs spans (reported once), not the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use telemetry::otlp::trace_service_server::{TraceService, TraceServiceServer};
use telemetry::otlp::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use telemetry::relay::ResourceSpans;
use tests::LocalEnv;

type Received = Arc<Mutex<Vec<ResourceSpans>>>;

/// The collector: keeps every span exported to it.
struct Receiver(Received);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if let Ok(mut spans) = self.0.lock() {
            spans.extend(req.into_inner().resource_spans);
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP gRPC receiver on 127.0.0.1 (the daemon and `hostctl` run in the
/// root namespace, so they reach it).
fn start_receiver(rt: &tokio::runtime::Runtime) -> (String, Received) {
    let received = Received::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind the receiver");
    let addr = listener.local_addr().expect("receiver address");
    let service = TraceServiceServer::new(Receiver(received.clone()));
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream_of(listener)),
    );
    (format!("http://{addr}"), received)
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
}

/// One span with the service that produced it.
#[derive(Debug, Clone)]
struct Seen {
    service: String,
    name: String,
    trace: String,
    id: Vec<u8>,
    parent: Vec<u8>,
    attrs: HashMap<String, String>,
}

fn flatten(resource_spans: &[ResourceSpans]) -> Vec<Seen> {
    let text =
        |v: &Option<telemetry::relay::AnyValue>| match v.as_ref().and_then(|v| v.value.as_ref()) {
            Some(telemetry::relay::any_value::Value::StringValue(s)) => s.clone(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
    let mut out = Vec::new();
    for r in resource_spans {
        let service = r
            .resource
            .iter()
            .flat_map(|res| &res.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(&kv.value))
            .unwrap_or_default();
        for span in r.scope_spans.iter().flat_map(|s| &s.spans) {
            out.push(Seen {
                service: service.clone(),
                name: span.name.clone(),
                trace: hex(&span.trace_id),
                id: span.span_id.clone(),
                parent: span.parent_span_id.clone(),
                attrs: span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.clone(), text(&kv.value)))
                    .collect(),
            });
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The trace id `up` printed on its `trace <id>: hostctl up <when>` line.
fn printed_trace(stdout: &str, when: &str) -> String {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("trace ") && l.ends_with(&format!("hostctl up {when}")))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one '{when}' trace line expected:\n{stdout}"
    );
    lines[0]["trace ".len()..]
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn up_args(trace_file: Option<&str>) -> Vec<&str> {
    let mut args = vec![
        "up",
        "--nodes-only",
        "--provider",
        "local",
        "--report-interval",
        "1",
        "--timeout",
        "90",
    ];
    if let Some(f) = trace_file {
        args.extend(["--trace-file", f]);
    }
    args
}

#[test]
fn one_trace_holds_host_steps_and_the_node_spans_they_caused() {
    if !tests::can_run_netns("one_trace_holds_host_steps_and_the_node_spans_they_caused") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (endpoint, received) = start_receiver(&rt);
    let nodes = ["app1-cp", "app1-worker-0"];
    let env = LocalEnv::new(61, &nodes);
    let file = env.home().join("up-trace.json");
    let file_arg = file.to_string_lossy().into_owned();
    let out = env.hostctl_with_env(
        &up_args(Some(&file_arg)),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "up failed:\n{stdout}\n{stderr}");
    let trace = printed_trace(&stdout, "started");
    assert_eq!(printed_trace(&stdout, "finished"), trace);
    assert!(!stderr.contains("span(s) dropped"), "{stderr}");

    let spans: Vec<Seen> = flatten(&received.lock().map(|s| s.clone()).unwrap_or_default())
        .into_iter()
        .filter(|s| s.trace == trace)
        .collect();
    let root: Vec<&Seen> = spans.iter().filter(|s| s.name == "hostctl up").collect();
    assert_eq!(root.len(), 1, "one root: {spans:#?}");
    assert!(root[0].parent.is_empty());
    assert_eq!(root[0].service, "hostctl");
    assert_eq!(
        root[0].attrs.get("outcome").map(String::as_str),
        Some("done")
    );

    for node in nodes {
        let step = spans
            .iter()
            .find(|s| s.name == format!("prerequisites/{node}"))
            .unwrap_or_else(|| panic!("no prerequisites step span for {node}: {spans:#?}"));
        assert_eq!(step.parent, root[0].id, "steps are children of the root");
        let attr = |k: &str| step.attrs.get(k).cloned().unwrap_or_default();
        assert_eq!(attr("node"), node);
        assert_eq!(attr("cluster"), "app1");
        assert_eq!(attr("provider"), "local");
        assert!(!attr("kubernetes.version").is_empty(), "{step:#?}");
        assert_eq!(attr("outcome"), "done");

        // The node's RPC span is the child of exactly this step span ...
        let rpc: Vec<&Seen> = spans
            .iter()
            .filter(|s| s.service == "node-agent" && s.parent == step.id)
            .collect();
        assert_eq!(rpc.len(), 1, "{node}: node spans under the step: {rpc:#?}");
        assert!(
            rpc[0].name.ends_with("Provisioning/InstallPrerequisites"),
            "{rpc:#?}"
        );
        // ... and the node's own prerequisite steps are children of that.
        assert!(
            spans
                .iter()
                .any(|s| s.parent == rpc[0].id && s.name == "prerequisite"),
            "{node}: no prerequisite spans under the RPC: {spans:#?}"
        );
    }
    let launch = spans
        .iter()
        .filter(|s| s.name.starts_with("launch/"))
        .count();
    assert_eq!(launch, nodes.len(), "a launch span per node");

    // The trace file holds the same trace, host and node spans, as OTLP JSON.
    let back = telemetry::file::read(&file).expect("the trace file parses as OTLP JSON");
    let in_file = flatten(&back.resource_spans);
    assert!(!in_file.is_empty());
    assert!(
        in_file.iter().all(|s| s.trace == trace),
        "only this run's trace"
    );
    assert!(in_file.iter().any(|s| s.name == "hostctl up"));
    assert!(in_file.iter().any(|s| s.service == "node-agent"));
    assert_eq!(in_file.len(), spans.len(), "file and collector agree");
    env.finish();
}

#[test]
fn a_dead_collector_costs_spans_reported_once_not_the_run() {
    if !tests::can_run_netns("a_dead_collector_costs_spans_reported_once_not_the_run") {
        return;
    }
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let endpoint = format!("http://{closed}");
    let env = LocalEnv::new(62, &["app2-cp"]);
    // This time the collector comes from the topology's `telemetry`
    // section (the environment variable is empty, so it does not win).
    let mut topology = std::fs::read_to_string(&env.topology).expect("topology");
    topology.push_str(&format!("telemetry:\n  otlpEndpoint: {endpoint}\n"));
    std::fs::write(&env.topology, topology).expect("write topology");
    let started = Instant::now();
    let out = env.hostctl_with_env(&up_args(None), &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]);
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "up failed:\n{stdout}\n{stderr}");
    let dropped: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("span(s) dropped"))
        .collect();
    assert_eq!(
        dropped.len(),
        1,
        "exactly one dropped-span report:\n{stderr}"
    );
    assert!(dropped[0].contains(&closed.to_string()), "{}", dropped[0]);

    // The run's own work (the summary's "in X s") plus what tracing adds at
    // the end: waiting for node spans (bounded) and a refused flush.
    let work = stdout
        .lines()
        .find_map(|l| {
            l.rsplit_once(" in ")
                .and_then(|(_, t)| t.strip_suffix(" s"))
        })
        .and_then(|t| t.parse::<f64>().ok())
        .expect("the summary's wall time");
    let overhead = elapsed.as_secs_f64() - work;
    assert!(
        overhead < Duration::from_secs(6).as_secs_f64(),
        "tracing with a dead collector added {overhead:.1} s"
    );
    env.finish();
}
