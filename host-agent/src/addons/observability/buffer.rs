//! C2: what an app cluster's Prometheus agent keeps while it cannot reach
//! mgmt's Thanos Receive, as one value that the rendered PrometheusAgent,
//! `hostctl render`'s printed figure and the real-Prometheus outage test
//! all read.

use serde_json::{Value, json};
use std::time::Duration;

/// The agent's WAL and remote-write settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentBuffer {
    /// `--storage.agent.retention.max-time`: data older than this is
    /// dropped from the WAL even when it was never sent.
    pub wal_max_time: Duration,
    /// `--storage.agent.retention.min-time`.
    pub wal_min_time: Duration,
    /// The WAL's volume (a PVC, so a restarted pod keeps its segments).
    pub wal_volume: &'static str,
    /// Remote write's retry backoff bounds.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

/// What every app cluster's agent runs with.
pub const APP_AGENT: AgentBuffer = AgentBuffer {
    wal_max_time: Duration::from_secs(6 * 3600),
    wal_min_time: Duration::from_secs(5 * 60),
    wal_volume: "2Gi",
    min_backoff: Duration::from_millis(30),
    max_backoff: Duration::from_secs(5),
};

impl AgentBuffer {
    /// One `prometheusSpec.remoteWrite` entry (PrometheusAgent CRD field
    /// names) writing to `url` as tenant `cluster`.
    pub fn remote_write(&self, url: &str, cluster: &str) -> Value {
        json!({
            "url": url,
            "headers": {"THANOS-TENANT": cluster},
            "queueConfig": {
                "minBackoff": go_duration(self.min_backoff),
                "maxBackoff": go_duration(self.max_backoff),
                "retryOnRateLimit": true,
            },
        })
    }

    /// `prometheusSpec.additionalArgs`: the WAL retention flags.
    pub fn additional_args(&self) -> Value {
        json!([
            {"name": "storage.agent.retention.max-time", "value": go_duration(self.wal_max_time)},
            {"name": "storage.agent.retention.min-time", "value": go_duration(self.wal_min_time)},
        ])
    }

    /// The longest mgmt outage the agent is sure to buffer and replay.
    pub fn buffered_outage(&self) -> Duration {
        self.wal_max_time
    }
}

/// A duration as Prometheus and the operator write it (`6h`, `5m`, `30ms`).
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
