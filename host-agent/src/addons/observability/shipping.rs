//! The shippers' own figures, read from their `/metrics` through the API
//! server: the Prometheus agent's remote write (how far it is behind what it
//! scraped: its WAL backlog) and Alloy's Loki writes. `status` shows them
//! and `verify`'s C2 judges the backlog; both read them here so they agree.
//! They stay readable while mgmt is down, which is exactly when they matter.

use super::alloy::LISTEN_PORT as ALLOY_PORT;
use super::buffer::APP_AGENT;
use super::prometheus::{PROMETHEUS, PROMETHEUS_PORT};
use super::{NAMESPACE, metrics_text};
use crate::cluster_api::health::STATUS_TIMEOUT;
use crate::cluster_api::read::get_text as get;
use serde::Serialize;

/// The pods of the Alloy DaemonSet (the chart's selector labels).
const ALLOY_SELECTOR: &str = "app.kubernetes.io/name=alloy";

/// The agent's remote write, from its own `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsShipping {
    /// The newest scraped sample's time minus the newest one sent: how much
    /// the WAL holds unsent. `None` before anything was sent.
    pub backlog_seconds: Option<f64>,
    /// Samples remote write gave up on (since the agent started).
    pub failed_samples: f64,
    /// What the WAL keeps before it drops unsent data ([`APP_AGENT`]).
    pub wal_keeps_seconds: u64,
}

/// Alloy's Loki writes, summed over the cluster's Alloy pods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogsShipping {
    pub shippers: usize,
    pub answering: usize,
    pub sent_entries: f64,
    pub dropped_entries: f64,
    pub batch_retries: f64,
}

/// The agent's `/metrics`, through the service proxy (also `verify`'s C2).
pub async fn agent_shipping(client: &kube::Client) -> Result<MetricsShipping, String> {
    let path = format!(
        "/api/v1/namespaces/{NAMESPACE}/services/http:{PROMETHEUS}:{PROMETHEUS_PORT}/proxy/metrics"
    );
    Ok(metrics_shipping(&get(client, &path).await?))
}

/// The figures of an agent's exposition `text`.
pub fn metrics_shipping(text: &str) -> MetricsShipping {
    let scraped = metrics_text::max(
        text,
        "prometheus_remote_storage_highest_timestamp_in_seconds",
    );
    let sent = metrics_text::max(
        text,
        "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
    );
    MetricsShipping {
        backlog_seconds: match (scraped, sent) {
            (Some(scraped), Some(sent)) if sent > 0.0 => Some((scraped - sent).max(0.0)),
            _ => None,
        },
        failed_samples: metrics_text::sum(text, "prometheus_remote_storage_samples_failed_total"),
        wal_keeps_seconds: APP_AGENT.buffered_outage().as_secs(),
    }
}

/// Every Alloy pod's `/metrics`, through the pod proxy, summed.
pub async fn alloy_shipping(client: &kube::Client) -> Result<LogsShipping, String> {
    use k8s_openapi::api::core::v1::Pod;
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), NAMESPACE);
    let list = tokio::time::timeout(
        STATUS_TIMEOUT,
        pods.list(&kube::api::ListParams::default().labels(ALLOY_SELECTOR)),
    )
    .await
    .map_err(|_| "the pod list did not answer".to_owned())?
    .map_err(|e| e.to_string())?;
    let mut texts = Vec::new();
    for pod in &list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let path = format!("/api/v1/namespaces/{NAMESPACE}/pods/{name}:{ALLOY_PORT}/proxy/metrics");
        texts.push(get(client, &path).await.ok());
    }
    Ok(logs_shipping(&texts))
}

/// The figures of each Alloy pod's exposition (`None`: it did not answer).
pub fn logs_shipping(texts: &[Option<String>]) -> LogsShipping {
    let answered: Vec<&str> = texts.iter().flatten().map(String::as_str).collect();
    let sum = |name: &str| {
        answered
            .iter()
            .map(|t| metrics_text::sum(t, name))
            .fold(0.0, |a, b| a + b)
    };
    LogsShipping {
        shippers: texts.len(),
        answering: answered.len(),
        sent_entries: sum("loki_write_sent_entries_total"),
        dropped_entries: sum("loki_write_dropped_entries_total"),
        batch_retries: sum("loki_write_batch_retries_total"),
    }
}
