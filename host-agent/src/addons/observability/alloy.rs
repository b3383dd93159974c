//! Grafana Alloy on every node of every cluster: the log shipper that
//! replaces Promtail (end of life 2026-03-02) with the spec's intent —
//! collect locally, keep positions, ship to mgmt's Loki, and replay what
//! an outage held back. `docs/observability.md` records the departure.
//!
//! What survives a mgmt outage: the container log files themselves (the
//! kubelet keeps them), read from the positions Alloy stores on the node
//! (a hostPath, so a restarted pod resumes where it stopped), and a send
//! queue that retries a failed batch for as long as the metrics buffer
//! holds ([`super::buffer::APP_AGENT`]) instead of Alloy's default ten
//! retries (about 8.5 minutes) after which batches are dropped.

use super::NAMESPACE;
use super::buffer::{APP_AGENT, go_duration};
use crate::addons::budget::{Replicas, Resources, Workload, resources_of};
use crate::addons::catalogue::{Addon, Chart, ChartRepo, Placement, Readiness};
use crate::addons::error::AddonError;
use crate::addons::render::{RenderContext, no_objects};
use serde_json::{Value, json};
use std::time::Duration;

/// The Alloy chart (Alloy v1.18.1), published from grafana/alloy.
pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://grafana.github.io/helm-charts"),
    name: "alloy",
    version: "1.11.1",
    digest: None,
};

/// Where Alloy keeps its positions and state on each node.
pub const STATE_DIR: &str = "/var/lib/alloy";
/// Alloy's HTTP port (the chart's `alloy.listenPort` default): its UI and
/// `/metrics`, which `hostctl status` reads through the pod proxy.
pub const LISTEN_PORT: u16 = 12345;
/// `loki.write`'s backoff cap (Alloy's default) and first wait.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// Alloy's default retries, which cover only about 8.5 minutes.
pub const DEFAULT_RETRIES: u64 = 10;

const WORKLOADS: &[Workload] = &[Workload {
    name: "alloy",
    replicas: Replicas::EveryNode,
    requests: Resources::new(20, 64),
    limits: Resources::new(0, 256),
    expected_mib: 90,
}];

pub const ALLOY: Addon = Addon {
    name: "alloy",
    summary: "Grafana Alloy: every node's container logs to mgmt's Loki, replayed after an outage",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::All,
    depends_on: &[],
    after_mgmt: &["loki"],
    needs_backup_target: false,
    values,
    objects: no_objects,
    readiness: &[Readiness::DaemonSet("alloy")],
    workloads: WORKLOADS,
    hook: None,
};

/// How many times `loki.write` retries one batch so that it keeps
/// retrying through `outage`: the doubling waits up to the cap, then one
/// retry per cap, plus the default's ten as margin.
pub fn retries_for(outage: Duration) -> u64 {
    outage.as_secs().div_ceil(MAX_BACKOFF.as_secs()) + DEFAULT_RETRIES
}

/// The pipeline: this node's pods (discovered through the API server),
/// their CRI log files, labelled with cluster/namespace/pod/container,
/// to mgmt's Loki.
pub fn config(cluster: &str, push_url: &str) -> String {
    let retries = retries_for(APP_AGENT.buffered_outage());
    format!(
        r#"discovery.kubernetes "pods" {{
  role = "pod"
  selectors {{
    role  = "pod"
    field = "spec.nodeName=" + sys.env("HOSTNAME")
  }}
}}

discovery.relabel "pods" {{
  targets = discovery.kubernetes.pods.targets
  rule {{
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }}
  rule {{
    source_labels = ["__meta_kubernetes_pod_uid", "__meta_kubernetes_pod_container_name"]
    separator     = "/"
    target_label  = "__path__"
    replacement   = "/var/log/pods/*$1/*.log"
  }}
}}

local.file_match "pods" {{
  path_targets = discovery.relabel.pods.output
}}

loki.source.file "pods" {{
  targets    = local.file_match.pods.targets
  forward_to = [loki.process.pods.receiver]
}}

loki.process "pods" {{
  stage.cri {{}}
  forward_to = [loki.write.mgmt.receiver]
}}

loki.write "mgmt" {{
  endpoint {{
    url                 = "{push_url}"
    min_backoff_period  = "{min}"
    max_backoff_period  = "{max}"
    max_backoff_retries = {retries}
  }}
  external_labels = {{ cluster = "{cluster}" }}
}}
"#,
        min = go_duration(MIN_BACKOFF),
        max = go_duration(MAX_BACKOFF),
    )
}

/// The chart's values: keys as in alloy 1.11.1's `values.yaml`. A
/// DaemonSet that tolerates every taint (control planes' logs too), its
/// state on the node.
fn values(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let endpoints = super::endpoints(ctx.resolved, ALLOY.name)?;
    Ok(json!({
        "controller": {
            "type": "daemonset",
            "tolerations": [{"operator": "Exists"}],
            "volumes": {"extra": [{"name": "alloy-state",
                                   "hostPath": {"path": STATE_DIR, "type": "DirectoryOrCreate"}}]},
        },
        "alloy": {
            "configMap": {"create": true, "content": config(ctx.cluster, &endpoints.logs_push)},
            "storagePath": STATE_DIR,
            "mounts": {"varlog": true, "extra": [{"name": "alloy-state", "mountPath": STATE_DIR}]},
            "resources": resources_of(WORKLOADS, "alloy"),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_outlast_the_metrics_buffer_and_the_default_does_not() {
        let outage = APP_AGENT.buffered_outage();
        let retries = retries_for(outage);
        assert!(retries > DEFAULT_RETRIES);
        // After the doubling (0.5 s … 256 s) every wait is the cap: the
        // retries past the default alone span the outage.
        let beyond_default = (retries - DEFAULT_RETRIES) * MAX_BACKOFF.as_secs();
        assert!(beyond_default >= outage.as_secs(), "{retries} retries");
        let config = config("app1", "http://192.0.2.3:3100/loki/api/v1/push");
        assert!(
            config.contains(&format!("max_backoff_retries = {retries}")),
            "{config}"
        );
        assert!(config.contains(r#"cluster = "app1""#));
    }
}
