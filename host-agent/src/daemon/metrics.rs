//! The daemon's metrics endpoint: `GET /metrics` in the Prometheus text
//! format over mutual TLS, for mgmt's Prometheus (docs/observability.md,
//! "hostctl's own metrics", lists every series).
//!
//! The port ([`crate::agent_plane::HOST_METRICS_PORT`]) is its own
//! listener beside the Host service, admitted and handshaken like it
//! ([`super::listener`], small budgets: one scraper), with the host
//! identity as server certificate and a client certificate from the agent
//! CA required ([`super::tls::ServerMaterial::metrics_acceptor`]). Which
//! client may read is [`super::authz`]'s table
//! ([`authz::METRICS_SCRAPE`]: role `hostctl:metrics` only), so a node's
//! or the admin's certificate gets 403. The request handling and its
//! bounds are the shared [`telemetry::metrics::server`].
//!
//! Counters live in [`DaemonMetrics`] (the services bump them); gauges are
//! read at scrape time from what the daemon already keeps (open streams,
//! the report store, the snapshot store), so nothing is kept twice.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use telemetry::metrics::{self as m, CounterVec, Exposition, Kind};
use tokio::task::JoinHandle;

use super::authz;
use super::listener::{self, Admission, ListenerLimits};
use super::state::Shared;
use super::{DaemonError, bind_tcp, tls};

/// The metrics listener's admission budgets: one Prometheus (two during a
/// configuration reload), perhaps someone with curl.
const LIMITS: ListenerLimits = ListenerLimits {
    total: 8,
    per_peer: 4,
    handshakes: 4,
    per_peer_on_loopback: false,
};

/// Why an enrolment was refused, as the `reason` label says it: a fixed
/// set, never the peer's words (a peer chooses the node name it sends).
pub mod refusal {
    /// The node is not in the topology.
    pub const NOT_IN_TOPOLOGY: &str = "not-in-topology";
    /// The token is unknown, wrong, expired, spent or another node's.
    pub const TOKEN: &str = "token";
    /// The token was good, the CSR was not.
    pub const CSR: &str = "csr";
    /// The host's token store failed.
    pub const STORE: &str = "store";
    /// The peer's address was over its attempt budget.
    pub const RATE_LIMITED: &str = "rate-limited";
    /// Every reason, so each has a series from the start.
    pub const ALL: [&str; 5] = [NOT_IN_TOPOLOGY, TOKEN, CSR, STORE, RATE_LIMITED];
}

/// The daemon's counters. Labels are node names of the topology or fixed
/// reasons, so their number is bounded by configuration, not by peers.
#[derive(Debug, Default)]
pub struct DaemonMetrics {
    /// Reports read from a node's stream (whatever became of them).
    pub reports_received: CounterVec,
    /// Reports acknowledged to a node (stored, duplicates, or refused for
    /// good).
    pub reports_acknowledged: CounterVec,
    /// Enrolments that issued a certificate, per node.
    pub enrolments_accepted: CounterVec,
    /// Refused enrolments, per [`refusal`] reason.
    pub enrolments_refused: CounterVec,
}

impl DaemonMetrics {
    /// Counters with a zero series for every node and refusal reason.
    pub fn for_nodes<'a>(nodes: impl IntoIterator<Item = &'a String>) -> DaemonMetrics {
        let metrics = DaemonMetrics::default();
        for node in nodes {
            metrics.reports_received.touch(node);
            metrics.reports_acknowledged.touch(node);
            metrics.enrolments_accepted.touch(node);
        }
        for reason in refusal::ALL {
            metrics.enrolments_refused.touch(reason);
        }
        metrics
    }
}

fn seconds_since(now: SystemTime, then: SystemTime) -> f64 {
    now.duration_since(then).unwrap_or_default().as_secs_f64()
}

/// The exposition at this moment.
pub fn render(shared: &Shared) -> String {
    let metrics = &shared.metrics;
    let now = shared.config.clock.now();
    let mut e = Exposition::new();
    e.counter_vec(
        "hostctl_daemon_reports_received_total",
        "Health reports the daemon read from a node's report stream.",
        "node",
        &metrics.reports_received,
    );
    e.counter_vec(
        "hostctl_daemon_reports_acknowledged_total",
        "Health reports the daemon acknowledged to a node (after storing them, or refused for good).",
        "node",
        &metrics.reports_acknowledged,
    );
    e.counter_vec(
        "hostctl_daemon_enrolments_accepted_total",
        "Enrolments that issued a node certificate.",
        "node",
        &metrics.enrolments_accepted,
    );
    e.counter_vec(
        "hostctl_daemon_enrolments_refused_total",
        "Refused enrolment attempts, by reason.",
        "reason",
        &metrics.enrolments_refused,
    );
    let nodes = &shared.config.nodes;
    e.gauge(
        "hostctl_daemon_nodes_connected",
        "Nodes of the topology with a report stream open now.",
        nodes
            .keys()
            .filter(|n| shared.connections.is_connected(n))
            .count() as f64,
    );
    e.family(
        "hostctl_daemon_node_connected",
        "1 while the node has a report stream open, else 0.",
        Kind::Gauge,
    );
    for node in nodes.keys() {
        let up = f64::from(u8::from(shared.connections.is_connected(node)));
        e.sample("hostctl_daemon_node_connected", &[("node", node)], up);
    }
    e.family(
        "hostctl_daemon_node_last_report_age_seconds",
        "Seconds since the daemon last received a report from the node (absent before its first).",
        Kind::Gauge,
    );
    match shared.store.nodes() {
        Ok(records) => {
            for (node, record) in records.iter().filter(|(n, _)| nodes.contains_key(*n)) {
                if let Some(at) = record.last_received_at {
                    let age = seconds_since(now, at);
                    e.sample(
                        "hostctl_daemon_node_last_report_age_seconds",
                        &[("node", node)],
                        age,
                    );
                }
            }
        }
        Err(e) => tracing::debug!("metrics: cannot read the report store: {e}"),
    }
    snapshot_series(shared, now, &mut e);
    e.finish()
}

/// The etcd snapshot gauges, per cluster whose control plane ships them.
fn snapshot_series(shared: &Shared, now: SystemTime, e: &mut Exposition) {
    let store = crate::snapshots::SnapshotStore::with_clock(
        &shared.config.home,
        shared.config.clock.0.clone(),
    );
    let mut stored = Vec::new();
    for cluster in shared.config.control_planes.keys() {
        match store.list(cluster) {
            Ok(list) => stored.push((cluster, list)),
            Err(err) => tracing::debug!(cluster, "metrics: cannot list snapshots: {err}"),
        }
    }
    e.family(
        "hostctl_daemon_etcd_snapshots_stored",
        "etcd snapshots the host keeps for the cluster.",
        Kind::Gauge,
    );
    for (cluster, list) in &stored {
        let n = list.len() as f64;
        e.sample(
            "hostctl_daemon_etcd_snapshots_stored",
            &[("cluster", cluster)],
            n,
        );
    }
    e.family(
        "hostctl_daemon_etcd_snapshot_age_seconds",
        "Age of the cluster's newest etcd snapshot on the host (absent while it has none).",
        Kind::Gauge,
    );
    for (cluster, list) in &stored {
        if let Some(age) = list.iter().map(|s| s.age(now)).min() {
            e.sample(
                "hostctl_daemon_etcd_snapshot_age_seconds",
                &[("cluster", cluster)],
                age.as_secs_f64(),
            );
        }
    }
}

/// Whether the leaf `der` may scrape: the agent plane's own check.
fn authorize(der: &[u8]) -> Result<(), String> {
    let caller = authz::caller_from_der(der).map_err(|e| e.to_string())?;
    authz::check(&caller, authz::METRICS_SCRAPE).map_err(|e| e.to_string())
}

/// A running metrics endpoint.
pub struct MetricsEndpoint {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Binds `addresses`:`port` and serves until the daemon stops.
pub async fn start(
    shared: Arc<Shared>,
    material: &tls::ServerMaterial,
    addresses: &[IpAddr],
    port: u16,
) -> Result<MetricsEndpoint, DaemonError> {
    let acceptor = material.metrics_acceptor()?;
    let (sockets, addr) = bind_tcp("the metrics endpoint", addresses, port).await?;
    let incoming = listener::serve(listener::Listener {
        what: "metrics endpoint",
        tcp: sockets,
        admission: Arc::new(Admission::new(LIMITS)),
        tls: acceptor,
        handshake_timeout: shared.config.connection_limits.handshake_timeout,
    });
    let for_render = shared.clone();
    let render: m::Render = Arc::new(move || render(&for_render));
    let stop = async move { shared.shutdown_requested().await };
    let task = m::serve(
        incoming,
        Arc::new(authorize),
        render,
        m::DEFAULT_LIMITS,
        stop,
    );
    tracing::info!(%addr, "metrics endpoint serving");
    Ok(MetricsEndpoint { addr, task })
}
