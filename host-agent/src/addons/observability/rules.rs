//! hostctl's own alert rules as PrometheusRule objects, evaluated by the
//! one evaluator, Thanos Ruler on mgmt, over Thanos Query (every
//! cluster). Every series reaches it with a `cluster` label: the app
//! agents' external label (Receive's tenant), mgmt Prometheus' external
//! label, and the node agents' target label (`agent_plane`). So every
//! expression aggregates by `cluster` (and `node` where it is about one),
//! and one rule covers every cluster.
//!
//! While an app cluster cannot reach mgmt its series stop arriving, so
//! the outage itself is `HostctlClusterMetricsStopped` (had series in the
//! last hour, none now); the backlog rules fire once the replay shows how
//! far behind the agent was, or when it stays behind while connected.

use super::NAMESPACE;
use super::buffer::APP_AGENT;
use serde_json::{Value, json};
use topology::ClusterRole;

/// Samples per second above which an agent writes more than one WAL
/// segment per truncation, so it buffers less than
/// [`AgentBuffer::buffered_outage`](super::buffer::AgentBuffer::buffered_outage)
/// promises (its doc: ≈ 1 700), with a margin.
pub const AGENT_SAMPLE_RATE_LIMIT: u32 = 1500;

/// The age of a cluster's newest etcd snapshot on the host that alerts
/// (several missed intervals of the node agents' schedule).
pub const SNAPSHOT_AGE_LIMIT_SECS: u64 = 6 * 3600;

fn alert(
    name: &str,
    expr: &str,
    for_: &str,
    severity: &str,
    summary: &str,
    description: &str,
) -> Value {
    json!({
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    })
}

/// The rule groups (the PrometheusRule's `spec.groups`).
pub fn groups() -> Value {
    let outage = APP_AGENT.buffered_outage().as_secs();
    let near = outage * 3 / 4;
    let backlog = "(max by (cluster) (prometheus_remote_storage_highest_timestamp_in_seconds) \
         - max by (cluster) (prometheus_remote_storage_queue_highest_sent_timestamp_seconds))";
    json!([
        {"name": "hostctl-metrics-shipping", "rules": [
            alert("HostctlClusterMetricsStopped",
                "count by (cluster) (max_over_time(up[1h])) unless count by (cluster) (up)",
                "5m", "critical",
                "{{ $labels.cluster }} sends no metrics to mgmt",
                "The cluster had series in the last hour and has none now: its Prometheus agent cannot reach Thanos Receive (or stopped). It buffers in its WAL meanwhile (C2)."),
            alert("HostctlRemoteWriteFailing",
                "sum by (cluster) (rate(prometheus_remote_storage_samples_failed_total[5m])) > 0",
                "15m", "warning",
                "{{ $labels.cluster }}'s agent fails to remote-write samples",
                "prometheus_remote_storage_samples_failed_total is rising: Thanos Receive refuses or drops what the agent sends."),
            alert("HostctlRemoteWriteBehind",
                &format!("{backlog} > 300"),
                "15m", "warning",
                "{{ $labels.cluster }}'s agent is {{ $value | humanizeDuration }} behind",
                "The newest sample the agent sent is older than the newest it scraped by more than 5 minutes."),
            alert("HostctlAgentWalNearMaxTime",
                &format!("{backlog} > {near}"),
                "0m", "critical",
                "{{ $labels.cluster }}'s unsent backlog is near what its WAL keeps",
                &format!("The agent is {{{{ $value | humanizeDuration }}}} behind; beyond {outage} s (the buffered outage, C2) samples are lost before mgmt receives them.")),
            alert("HostctlAgentWalGrowingFast",
                &format!("sum by (cluster) (rate(prometheus_agent_samples_appended_total[30m])) > {AGENT_SAMPLE_RATE_LIMIT}"),
                "1h", "warning",
                "{{ $labels.cluster }}'s agent appends too fast for its buffer",
                "Above this rate the WAL fills more than one segment per truncation, so a mgmt outage is buffered for less than the promised time."),
        ]},
        {"name": "hostctl-logs-shipping", "rules": [
            alert("HostctlLokiWritesDropped",
                "sum by (cluster) (rate(loki_write_dropped_entries_total[10m])) > 0",
                "5m", "warning",
                "{{ $labels.cluster }}'s Alloy drops log entries",
                "loki.write gave up on entries (retries exhausted or refused by Loki): those logs are lost."),
            alert("HostctlLokiWritesRetrying",
                "sum by (cluster) (rate(loki_write_batch_retries_total[10m])) > 0",
                "30m", "warning",
                "{{ $labels.cluster }}'s Alloy keeps retrying Loki",
                "Log batches have been retried for 30 minutes: mgmt's Loki is away or refusing. Alloy retries through the buffered outage, then drops."),
        ]},
        {"name": "hostctl-agent-plane", "rules": [
            alert("HostctlNodeReportBufferGrowing",
                "max by (cluster, node) (hostctl_node_report_buffer_depth) > 10 and max by (cluster, node) (delta(hostctl_node_report_buffer_depth[15m])) > 0",
                "15m", "warning",
                "{{ $labels.node }} piles up unacknowledged reports",
                "The node agent's report buffer keeps growing: the host daemon is not acknowledging its reports."),
            alert("HostctlNodeReportsDropped",
                "sum by (cluster, node) (increase(hostctl_node_report_buffer_dropped_total[15m])) > 0",
                "0m", "critical",
                "{{ $labels.node }} dropped health reports",
                "The report buffer was full while the host was unreachable; the dropped reports are lost."),
            alert("HostctlNodeNotReporting",
                "max by (cluster, node) (hostctl_daemon_node_last_report_age_seconds) > 300",
                "5m", "warning",
                "The host has had no report from {{ $labels.node }} for {{ $value | humanizeDuration }}",
                "The node agent is down or cannot reach the host daemon."),
            alert("HostctlEtcdSnapshotTooOld",
                &format!("max by (cluster) (hostctl_daemon_etcd_snapshot_age_seconds) > {SNAPSHOT_AGE_LIMIT_SECS}"),
                "15m", "critical",
                "{{ $labels.cluster }}'s newest etcd snapshot is {{ $value | humanizeDuration }} old",
                "The host holds no recent etcd snapshot of the cluster: a restore would lose everything since."),
        ]},
    ])
}

/// The PrometheusRule objects for a cluster of `role`: all of them on
/// mgmt, where the ruler runs; none elsewhere (agents evaluate nothing).
pub fn rule_objects(role: ClusterRole) -> Vec<Value> {
    if role != ClusterRole::Mgmt {
        return Vec::new();
    }
    vec![json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "hostctl", "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "spec": {"groups": groups()},
    })]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_keeps_the_cluster_and_says_what_and_how_bad() {
        let groups = groups();
        let rules: Vec<&Value> = groups
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        assert!(rules.len() >= 8);
        for r in rules {
            let expr = r["expr"].as_str().expect("expr");
            assert!(expr.contains("by (cluster"), "{expr}");
            assert!(r["labels"]["severity"].is_string(), "{r}");
            assert!(
                r["annotations"]["summary"].is_string()
                    && r["annotations"]["description"].is_string(),
                "{r}"
            );
        }
        assert!(rule_objects(ClusterRole::App).is_empty());
    }
}
