//! The node agent's metrics endpoint: `GET /metrics` in the Prometheus
//! text format, over mutual TLS on `metricsListen` (port
//! [`proto::contract::ports::NODE_METRICS`]), for mgmt's Prometheus
//! (docs/observability.md, "hostctl's own metrics", lists every series).
//!
//! Connections are accepted and handshaken by the same code as the Node
//! service's ([`crate::node_tls::incoming`]: handshake timeout, cap on
//! handshakes in flight, the certificate from the [`IdentityCell`] so a
//! renewal is served at once), with a client certificate from the pinned
//! agent CA required; then only a certificate carrying the role
//! `hostctl:metrics` may read ([`authorize`]) — the host's, the admin's
//! and other nodes' are answered 403. Requests are handled by the shared
//! [`telemetry::metrics::server`].
//!
//! Nothing is measured for the endpoint's sake: the counters are the
//! outbox's and the snapshot schedule's own ([`crate::report::Outbox`],
//! [`SnapshotMetrics`]), read when Prometheus asks.

use std::future::Future;
use std::sync::Arc;

use telemetry::metrics::{self as m, Counter, Exposition, Histogram};
use tokio::net::TcpListener;

use crate::identity::{IdentityCell, IdentityError};
use crate::report::Outbox;

/// Bucket bounds of a snapshot's duration, in seconds (a lab etcd takes
/// well under a second; a large one tens of seconds).
const SNAPSHOT_SECONDS: [f64; 8] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What the etcd snapshot schedule counts.
#[derive(Debug)]
pub struct SnapshotMetrics {
    /// Scheduled snapshots taken.
    pub taken: Counter,
    /// Scheduled snapshots that failed.
    pub failed: Counter,
    /// Snapshots shipped to the host.
    pub shipped: Counter,
    /// How long taking a snapshot took.
    pub duration: Histogram,
}

impl Default for SnapshotMetrics {
    fn default() -> Self {
        SnapshotMetrics {
            taken: Counter::default(),
            failed: Counter::default(),
            shipped: Counter::default(),
            duration: Histogram::new(&SNAPSHOT_SECONDS),
        }
    }
}

/// Everything the endpoint reads.
#[derive(Clone)]
pub struct Sources {
    pub outbox: Arc<Outbox>,
    pub snapshots: Arc<SnapshotMetrics>,
}

/// The process's resident set, from `/proc/self/statm` (Linux); `None`
/// elsewhere.
fn resident_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Every platform the agent runs on (x86_64, aarch64 Linux) uses 4 KiB
    // pages for the resident count's unit.
    Some(pages * 4096.0)
}

/// The exposition at this moment.
pub fn render(s: &Sources) -> String {
    let c = s.outbox.counters();
    let (depth, dropped) = s.outbox.stats();
    let mut e = Exposition::new();
    e.counter(
        "hostctl_node_reports_sent_total",
        "Health reports written to a report stream (re-sends after a reconnect count again).",
        &c.sent,
    );
    e.counter(
        "hostctl_node_reports_acknowledged_total",
        "Acknowledgements the host sent for this agent's reports.",
        &c.acknowledged,
    );
    e.gauge(
        "hostctl_node_report_buffer_depth",
        "Reports queued and not yet acknowledged by the host.",
        depth as f64,
    );
    e.family(
        "hostctl_node_report_buffer_dropped_total",
        "Reports dropped because the buffer was full while the host was unreachable.",
        m::Kind::Counter,
    );
    e.sample(
        "hostctl_node_report_buffer_dropped_total",
        &[],
        dropped as f64,
    );
    e.counter(
        "hostctl_node_report_stream_reconnects_total",
        "Times the report stream to the host ended and was opened again.",
        &c.reconnects,
    );
    let snap = &s.snapshots;
    e.counter(
        "hostctl_node_etcd_snapshots_taken_total",
        "Scheduled etcd snapshots taken (control planes).",
        &snap.taken,
    );
    e.counter(
        "hostctl_node_etcd_snapshots_failed_total",
        "Scheduled etcd snapshots that failed.",
        &snap.failed,
    );
    e.counter(
        "hostctl_node_etcd_snapshots_shipped_total",
        "etcd snapshots uploaded to the host.",
        &snap.shipped,
    );
    e.histogram(
        "hostctl_node_etcd_snapshot_duration_seconds",
        "How long taking a scheduled etcd snapshot took.",
        &snap.duration,
    );
    if let Some(rss) = resident_bytes() {
        e.gauge(
            "hostctl_node_resident_memory_bytes",
            "The node agent's resident set size.",
            rss,
        );
    }
    e.finish()
}

/// Whether the leaf `der` may scrape: it must carry `hostctl:metrics`.
/// (The handshake already checked that it chains to the agent CA, is
/// valid now and — if it has an EKU extension — is for client auth.)
pub fn authorize(der: &[u8]) -> Result<(), String> {
    let roles = certs::roles_of(der).map_err(|e| e.to_string())?;
    if roles.iter().any(|r| r == certs::ROLE_METRICS) {
        Ok(())
    } else {
        Err(format!("roles {roles:?} lack {}", certs::ROLE_METRICS))
    }
}

/// Serves `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    ca_pem: &str,
    identity: IdentityCell,
    sources: Sources,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), IdentityError> {
    let mut tls = crate::node_tls::server_config(ca_pem, identity)?;
    tls.alpn_protocols = vec![m::server::ALPN_HTTP11.to_vec()];
    let incoming = crate::node_tls::incoming(listener, tls);
    let render: m::Render = Arc::new(move || render(&sources));
    let task = m::serve(
        incoming,
        Arc::new(authorize),
        render,
        m::DEFAULT_LIMITS,
        stop,
    );
    let _ = task.await;
    Ok(())
}
