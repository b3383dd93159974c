//! The dashboards Grafana is provisioned with, one per concern: the
//! clusters, their nodes, and the platform's own components (including
//! hostctl's agent plane and the C2 buffers). Built here, not copied from
//! the web, so every query names series that the rendered stack collects.

use serde_json::{Value, json};

/// One time-series panel: its title and PromQL.
struct Panel {
    title: &'static str,
    expr: &'static str,
}

const CLUSTERS: &[Panel] = &[
    Panel {
        title: "Targets up, by cluster",
        expr: "sum by (cluster) (up)",
    },
    Panel {
        title: "Nodes ready, by cluster",
        expr: r#"sum by (cluster) (kube_node_status_condition{condition="Ready",status="true"})"#,
    },
    Panel {
        title: "Pods not running, by cluster",
        expr: r#"sum by (cluster) (kube_pod_status_phase{phase!~"Running|Succeeded"})"#,
    },
    Panel {
        title: "API server requests by code",
        expr: "sum by (cluster, code) (rate(apiserver_request_total[5m]))",
    },
];

const NODES: &[Panel] = &[
    Panel {
        title: "CPU busy, by node",
        expr: r#"1 - avg by (cluster, instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))"#,
    },
    Panel {
        title: "Memory available, by node",
        expr: "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
    },
    Panel {
        title: "Root filesystem free, by node",
        expr: r#"node_filesystem_avail_bytes{mountpoint="/"} / node_filesystem_size_bytes{mountpoint="/"}"#,
    },
];

const PLATFORM: &[Panel] = &[
    Panel {
        title: "Metrics shipping lag (C2), by cluster",
        expr: "max by (cluster) (prometheus_remote_storage_highest_timestamp_in_seconds) - max by (cluster) (prometheus_remote_storage_queue_highest_sent_timestamp_seconds)",
    },
    Panel {
        title: "Log lines sent to Loki, by cluster",
        expr: "sum by (cluster) (rate(loki_write_sent_entries_total[5m]))",
    },
    Panel {
        title: "Log lines dropped, by cluster",
        expr: "sum by (cluster) (rate(loki_write_dropped_entries_total[5m]))",
    },
    Panel {
        title: "Thanos Receive: samples written",
        expr: "sum(rate(prometheus_tsdb_head_samples_appended_total{job=~\".*receive.*\"}[5m]))",
    },
    Panel {
        title: "Certificates expiring (days), cert-manager",
        expr: "min by (cluster, name) (certmanager_certificate_expiration_timestamp_seconds - time()) / 86400",
    },
];

/// A dashboard of `panels` in one column.
fn dashboard(uid: &str, title: &str, panels: &[Panel]) -> Value {
    let panels: Vec<Value> = panels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "id": i + 1,
                "type": "timeseries",
                "title": p.title,
                "datasource": {"type": "prometheus", "uid": "thanos"},
                "gridPos": {"h": 8, "w": 24, "x": 0, "y": i * 8},
                "targets": [{"refId": "A", "expr": p.expr,
                             "datasource": {"type": "prometheus", "uid": "thanos"}}],
            })
        })
        .collect();
    json!({
        "uid": uid,
        "title": title,
        "tags": ["hostctl"],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels,
    })
}

/// Every dashboard, by file name.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        (
            "clusters",
            dashboard("hostctl-clusters", "Clusters", CLUSTERS),
        ),
        ("nodes", dashboard("hostctl-nodes", "Nodes", NODES)),
        (
            "platform",
            dashboard("hostctl-platform", "Platform", PLATFORM),
        ),
    ]
}

/// Every PromQL expression of every dashboard (tests parse them).
pub fn expressions() -> Vec<&'static str> {
    CLUSTERS
        .iter()
        .chain(NODES)
        .chain(PLATFORM)
        .map(|p| p.expr)
        .collect()
}
