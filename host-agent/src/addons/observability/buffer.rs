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

/// The header that names the tenant (the app cluster) to Thanos Receive.
pub const TENANT_HEADER: &str = "THANOS-TENANT";

/// How often the agent truncates its WAL: Prometheus' fixed
/// `DefaultTruncateFrequency` (no flag sets it, the operator renders
/// none), so it is a property of the binary, not a setting of ours.
pub const TRUNCATE_FREQUENCY: Duration = Duration::from_secs(2 * 3600);

/// One remote-write queue setting under its two names: the operator's
/// `queueConfig` field and the Prometheus `queue_config` key the operator
/// writes it as.
struct QueueSetting {
    cr: &'static str,
    native: &'static str,
    value: Value,
}

impl AgentBuffer {
    /// The WAL retention flags, named as Prometheus' command line names
    /// them (without `--`): the one source of [`Self::additional_args`]
    /// and [`Self::agent_flags`].
    fn wal_flags(&self) -> [(&'static str, String); 2] {
        [
            (
                "storage.agent.retention.max-time",
                go_duration(self.wal_max_time),
            ),
            (
                "storage.agent.retention.min-time",
                go_duration(self.wal_min_time),
            ),
        ]
    }

    /// The queue settings: the one source of [`Self::remote_write`] and
    /// [`Self::remote_write_config`]. `retryOnRateLimit` keeps a 429 from
    /// Receive (its limits while it catches up) a retry, not a drop.
    fn queue_settings(&self) -> [QueueSetting; 3] {
        [
            QueueSetting {
                cr: "minBackoff",
                native: "min_backoff",
                value: json!(go_duration(self.min_backoff)),
            },
            QueueSetting {
                cr: "maxBackoff",
                native: "max_backoff",
                value: json!(go_duration(self.max_backoff)),
            },
            QueueSetting {
                cr: "retryOnRateLimit",
                native: "retry_on_http_429",
                value: json!(true),
            },
        ]
    }

    /// One `prometheusSpec.remoteWrite` entry (PrometheusAgent CRD field
    /// names) writing to `url` as tenant `cluster`.
    pub fn remote_write(&self, url: &str, cluster: &str) -> Value {
        let queue: serde_json::Map<String, Value> = self
            .queue_settings()
            .into_iter()
            .map(|s| (s.cr.to_owned(), s.value))
            .collect();
        json!({"url": url, "headers": {TENANT_HEADER: cluster}, "queueConfig": queue})
    }

    /// The same entry as the operator writes it into the agent's
    /// `prometheus.yaml` (`remote_write:`), for a Prometheus run without
    /// the operator (the C2 test's).
    pub fn remote_write_config(&self, url: &str, cluster: &str) -> Value {
        let queue: serde_json::Map<String, Value> = self
            .queue_settings()
            .into_iter()
            .map(|s| (s.native.to_owned(), s.value))
            .collect();
        json!({"url": url, "headers": {TENANT_HEADER: cluster}, "queue_config": queue})
    }

    /// `prometheusSpec.additionalArgs`: the WAL retention flags.
    pub fn additional_args(&self) -> Value {
        self.wal_flags()
            .into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect()
    }

    /// The same flags on a command line, as the operator turns each
    /// `additionalArgs` entry into `--name=value`.
    pub fn agent_flags(&self) -> Vec<String> {
        self.wal_flags()
            .into_iter()
            .map(|(name, value)| format!("--{name}={value}"))
            .collect()
    }

    /// One line for `hostctl render`: the figure and what it comes from.
    pub fn explain(&self) -> String {
        format!(
            "metrics: the agent buffers a mgmt outage of up to {} (WAL max-time {}, truncated every {})",
            go_duration(self.buffered_outage()),
            go_duration(self.wal_max_time),
            go_duration(TRUNCATE_FREQUENCY),
        )
    }

    /// The longest mgmt outage the agent is sure to buffer and replay,
    /// while it keeps running (from the Prometheus 2.x agent's `tsdb/agent`
    /// and remote-write WAL watcher; re-read them when the image moves).
    ///
    /// - **Remote write does not bound it.** A refused connection, a 5xx
    ///   and (with `retry_on_http_429`) a 429 are retried for ever, the
    ///   wait doubling from `min_backoff` to `max_backoff`; the backoff
    ///   only delays the replay by up to `max_backoff` once mgmt is back.
    ///   The in-memory queue fills within seconds and then the WAL reader
    ///   waits where it is, so the outage is held by the WAL.
    /// - **The WAL's cut-off.** Every [`TRUNCATE_FREQUENCY`] the agent
    ///   drops samples older than max(oldest unsent − min-time,
    ///   now − max-time): while mgmt is away the oldest unsent sample is
    ///   the outage's start, so nothing of the outage is cut before it
    ///   has lasted `wal_max_time`.
    /// - **Segment deletion.** Truncation also starts a new segment and
    ///   deletes the older two thirds of the closed ones, whatever remote
    ///   write has read; the reader keeps the segment it has open, but a
    ///   later segment deleted before it gets there is lost (it resumes
    ///   at the newest). With fewer than one 128 MiB segment written per
    ///   truncation, the first segment after the outage's start goes at
    ///   the second truncation after it at the earliest: so
    ///   `2 × TRUNCATE_FREQUENCY`. A cluster writing more than 128 MiB of
    ///   WAL in two hours (≈ 1 700 samples/s at ~11 bytes each, some
    ///   50 000 series at the chart's 30 s interval) buffers less: the
    ///   `HostctlAgentWalGrowingFast` alert and `hostctl status`'s
    ///   backlog say so.
    ///
    /// A restarted agent does not re-send what its WAL holds (the reader
    /// starts at the restart), so the figure assumes the agent runs on
    /// through the outage; C1 keeps the app cluster up while mgmt is down.
    pub fn buffered_outage(&self) -> Duration {
        self.wal_max_time.min(2 * TRUNCATE_FREQUENCY)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC contract C2: "≈2.7 h in the original".
    const SPEC_C2: Duration = Duration::from_secs(27 * 360);

    #[test]
    fn the_agent_buffers_at_least_the_spec_outage() {
        assert!(
            APP_AGENT.buffered_outage() >= SPEC_C2,
            "{:?}",
            APP_AGENT.buffered_outage()
        );
        // …and the figure is what bounds it, not the max-time alone.
        assert!(APP_AGENT.buffered_outage() <= APP_AGENT.wal_max_time);
        assert!(APP_AGENT.buffered_outage() <= 2 * TRUNCATE_FREQUENCY);
    }

    /// The operator's translation, pinned: `additionalArgs` entries become
    /// `--name=value`, `queueConfig`'s fields become `queue_config`'s keys
    /// (prometheus-operator `pkg/prometheus/promcfg.go`), `url` and
    /// `headers` keep their names.
    #[test]
    fn the_cr_fields_and_the_native_config_say_the_same() {
        let b = APP_AGENT;
        let args = b.additional_args();
        let from_args: Vec<String> = args
            .as_array()
            .expect("a list")
            .iter()
            .map(|a| {
                format!(
                    "--{}={}",
                    a["name"].as_str().expect("name"),
                    a["value"].as_str().expect("value")
                )
            })
            .collect();
        assert_eq!(from_args, b.agent_flags());
        assert_eq!(
            b.agent_flags(),
            [
                "--storage.agent.retention.max-time=6h",
                "--storage.agent.retention.min-time=5m"
            ]
        );
        let cr = b.remote_write("http://mgmt/api/v1/receive", "app1");
        let native = b.remote_write_config("http://mgmt/api/v1/receive", "app1");
        assert_eq!(cr["url"], native["url"]);
        assert_eq!(cr["headers"], native["headers"]);
        assert_eq!(native["headers"][TENANT_HEADER], "app1");
        for (cr_field, key) in [
            ("minBackoff", "min_backoff"),
            ("maxBackoff", "max_backoff"),
            ("retryOnRateLimit", "retry_on_http_429"),
        ] {
            assert_eq!(
                cr["queueConfig"][cr_field], native["queue_config"][key],
                "{cr_field}"
            );
        }
        assert_eq!(native["queue_config"]["min_backoff"], "30ms");
        assert_eq!(native["queue_config"]["max_backoff"], "5s");
        assert_eq!(native["queue_config"]["retry_on_http_429"], true);
        assert_eq!(cr["queueConfig"].as_object().map(|m| m.len()), Some(3));
    }
}
