//! `hostctl status`'s observability lines, per cluster once its shippers
//! are installed: **metrics shipping** (an app cluster's Prometheus agent:
//! how far remote write is behind what it scraped — its WAL backlog — and
//! how many samples failed), **logs shipping** (every Alloy pod's Loki
//! writes: sent, dropped, retried batches), and **the age of the newest
//! sample mgmt holds** for the cluster (from Thanos Query); and whether
//! k8sgpt analyses anything.
//!
//! Everything is read through each cluster's API server with the admin
//! identity minted from its CA (the service and pod proxies), so nothing is
//! exposed beyond what `up` already opens, and the shipping figures come
//! from the shippers themselves: they stay readable while mgmt is down,
//! which is exactly when they matter. Unreachable is a state, not a
//! failure: each figure that did not answer says why instead.

use super::StatusView;
use crate::addons::observability::NAMESPACE;
use crate::addons::observability::alloy::ALLOY;
use crate::addons::observability::buffer::go_duration;
use crate::addons::observability::prometheus::AGENT;
use crate::addons::observability::shipping::{
    LogsShipping, MetricsShipping, agent_shipping, alloy_shipping,
};
use crate::addons::observability::thanos::{QUERY, QUERY_HTTP_PORT, THANOS};
use crate::cli::Context;
use crate::cluster_api::client::admin_client;
use crate::cluster_api::health::STATUS_TIMEOUT;
use crate::cluster_api::read::get_text as get;
use crate::orchestrator::{STATE_FILE, UpState};
use crate::state_file::StateDocument as _;
use certs::Pki;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use topology::{ClusterRole, Resolved};

/// The newest sample of each cluster, as Thanos Query evaluates it now
/// (URL-encoded `max by (cluster) (timestamp(up))`).
const NEWEST_SAMPLE_QUERY: &str = "max%20by%20(cluster)%20(timestamp(up))";

/// The observability part of `status`.
#[derive(Debug, Default, Serialize)]
pub struct ObservabilityView {
    pub k8sgpt: K8sgptView,
    /// Per cluster whose shippers are installed.
    pub clusters: Vec<ShippingView>,
}

/// k8sgpt, from the topology.
#[derive(Debug, Default, Serialize)]
pub struct K8sgptView {
    pub on: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One cluster's shipping.
#[derive(Debug, Default, Serialize)]
pub struct ShippingView {
    pub cluster: String,
    /// The Prometheus agent's remote write (app clusters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Answer<MetricsShipping>>,
    /// Alloy's Loki writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Answer<LogsShipping>>,
    /// Seconds since the newest sample mgmt holds for this cluster
    /// (`null` inside `ok`: none within Thanos' lookback of five minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_sample_age_seconds: Option<Answer<Option<u64>>>,
}

/// A figure, or why there is none.
#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer<T> {
    Ok(T),
    Error(String),
}

/// Adds the observability lines when this home's topology has mgmt.
pub async fn with_observability(mut v: StatusView, ctx: &Context) -> StatusView {
    let Ok(workspace) = crate::workspace::Workspace::recorded(ctx) else {
        return v;
    };
    let resolved = workspace.resolved;
    let Some(mgmt) = resolved.topology().mgmt_cluster().map(|c| c.name.clone()) else {
        return v;
    };
    let mut view = ObservabilityView {
        k8sgpt: k8sgpt_view(&resolved),
        clusters: Vec::new(),
    };
    let state = UpState::load(&ctx.home.root().join(STATE_FILE)).unwrap_or_default();
    let Ok(pki) = certs::Pki::open(ctx.home.root()) else {
        v.observability = Some(view);
        return v;
    };
    let (pki, resolved) = (Arc::new(pki), Arc::new(resolved));
    // Every cluster side by side, each request bounded by STATUS_TIMEOUT,
    // so a lab that is down costs one timeout, not one per figure.
    let mut probes = tokio::task::JoinSet::new();
    let thanos = state.addon_done(&mgmt, THANOS.name);
    let newest = {
        let (pki, resolved, mgmt) = (pki.clone(), resolved.clone(), mgmt.clone());
        tokio::spawn(async move {
            match thanos {
                true => Some(newest_samples(&client(&pki, &resolved, &mgmt).await?).await),
                false => None,
            }
            .transpose()
        })
    };
    for (order, cluster) in resolved.topology().clusters().iter().enumerate() {
        let agent =
            cluster.role != ClusterRole::Mgmt && state.addon_done(&cluster.name, AGENT.name);
        let alloy = state.addon_done(&cluster.name, ALLOY.name);
        if !agent && !alloy {
            continue;
        }
        let (pki, resolved, name) = (pki.clone(), resolved.clone(), cluster.name.clone());
        probes.spawn(async move {
            let row = match client(&pki, &resolved, &name).await {
                Ok(c) => {
                    let (metrics, logs) = tokio::join!(
                        async {
                            match agent {
                                true => Some(answer(agent_shipping(&c).await)),
                                false => None,
                            }
                        },
                        async {
                            match alloy {
                                true => Some(answer(alloy_shipping(&c).await)),
                                false => None,
                            }
                        },
                    );
                    (metrics, logs)
                }
                Err(e) => (
                    agent.then(|| Answer::Error(e.clone())),
                    alloy.then_some(Answer::Error(e)),
                ),
            };
            (order, name, row)
        });
    }
    let mut rows = Vec::new();
    while let Some(Ok(row)) = probes.join_next().await {
        rows.push(row);
    }
    rows.sort_by_key(|(order, _, _)| *order);
    let newest = newest.await.unwrap_or_else(|e| Err(e.to_string()));
    for (_, cluster, (metrics, logs)) in rows {
        let newest_sample_age_seconds = match &newest {
            Ok(Some(ages)) => Some(Answer::Ok(
                ages.iter()
                    .find(|(c, _)| *c == cluster)
                    .map(|(_, age)| *age),
            )),
            Ok(None) => None,
            Err(e) => Some(Answer::Error(e.clone())),
        };
        view.clusters.push(ShippingView {
            cluster,
            metrics,
            logs,
            newest_sample_age_seconds,
        });
    }
    v.observability = Some(view);
    v
}

/// `cluster`'s admin client (a freshly minted certificate; no request yet).
async fn client(pki: &Pki, resolved: &Resolved, cluster: &str) -> Result<kube::Client, String> {
    admin_client(pki, resolved, cluster, STATUS_TIMEOUT)
        .await
        .map(|(c, _)| c)
        .map_err(|e| e.to_string())
}

fn answer<T>(r: Result<T, String>) -> Answer<T> {
    r.map_or_else(Answer::Error, Answer::Ok)
}

fn k8sgpt_view(resolved: &Resolved) -> K8sgptView {
    match resolved.topology().k8sgpt() {
        Some(k) => K8sgptView {
            on: true,
            backend: Some(k.backend.as_str().to_owned()),
            model: Some(k.model.clone()),
        },
        None => K8sgptView::default(),
    }
}

/// Each cluster's newest-sample age from Thanos Query's instant query.
async fn newest_samples(client: &kube::Client) -> Result<Vec<(String, u64)>, String> {
    let path = format!(
        "/api/v1/namespaces/{NAMESPACE}/services/http:{QUERY}:{QUERY_HTTP_PORT}/proxy/api/v1/query?query={NEWEST_SAMPLE_QUERY}"
    );
    sample_ages(&get(client, &path).await?)
}

/// Parses a Prometheus API instant-query answer of `timestamp(...)` by
/// cluster: each result's value is `[evaluated at, newest sample's time]`.
pub fn sample_ages(body: &str) -> Result<Vec<(String, u64)>, String> {
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("Thanos Query answered non-JSON: {e}"))?;
    if json["status"] != "success" {
        return Err(format!(
            "Thanos Query: {}",
            json["error"].as_str().unwrap_or("no success")
        ));
    }
    let results = json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(results
        .iter()
        .filter_map(|r| {
            let cluster = r["metric"]["cluster"].as_str()?.to_owned();
            let at = r["value"][0].as_f64()?;
            let newest: f64 = r["value"][1].as_str()?.parse().ok()?;
            Some((cluster, (at - newest).max(0.0) as u64))
        })
        .collect())
}

/// The table's lines: k8sgpt, then one per cluster.
pub fn lines(v: &ObservabilityView) -> Vec<String> {
    let mut out = vec![match (&v.k8sgpt.backend, &v.k8sgpt.model) {
        (Some(b), Some(m)) => format!("k8sgpt: on ({b}, model {m})"),
        _ => "k8sgpt: off (no backend in the topology: set observability.k8sgpt)".to_owned(),
    }];
    for c in &v.clusters {
        let mut parts = Vec::new();
        if let Some(m) = &c.metrics {
            parts.push(format!("metrics: {}", shown(m, metrics_line)));
        }
        if let Some(l) = &c.logs {
            parts.push(format!("logs: {}", shown(l, logs_line)));
        }
        if let Some(n) = &c.newest_sample_age_seconds {
            parts.push(format!(
                "newest sample on mgmt: {}",
                shown(n, |age| match age {
                    Some(s) => format!("{} old", go_duration(Duration::from_secs(*s))),
                    None => "none in the last 5m".to_owned(),
                })
            ));
        }
        out.push(format!("{}: {}", c.cluster, parts.join("; ")));
    }
    out
}

fn shown<T>(a: &Answer<T>, f: impl Fn(&T) -> String) -> String {
    match a {
        Answer::Ok(t) => f(t),
        Answer::Error(e) => format!("unknown ({e})"),
    }
}

fn metrics_line(m: &MetricsShipping) -> String {
    let keeps = go_duration(Duration::from_secs(m.wal_keeps_seconds));
    let behind = match m.backlog_seconds {
        Some(s) => format!("{} behind", go_duration(Duration::from_secs(s as u64))),
        None => "nothing sent yet".to_owned(),
    };
    let failed = if m.failed_samples > 0.0 {
        format!(", {} samples failed", m.failed_samples)
    } else {
        String::new()
    };
    format!("{behind} (the WAL keeps {keeps}){failed}")
}

fn logs_line(l: &LogsShipping) -> String {
    format!(
        "{}/{} Alloy answering, {} entries sent, {} dropped, {} batch retries",
        l.answering, l.shippers, l.sent_entries, l.dropped_entries, l.batch_retries
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addons::observability::shipping::{logs_shipping, metrics_shipping};

    #[test]
    fn the_agent_backlog_is_scraped_minus_sent_and_absent_before_any_send() {
        let text = "# HELP x\n\
            prometheus_remote_storage_highest_timestamp_in_seconds 1000\n\
            prometheus_remote_storage_queue_highest_sent_timestamp_seconds{remote_name=\"a\",url=\"u\"} 940\n\
            prometheus_remote_storage_samples_failed_total{remote_name=\"a\",url=\"u\"} 3\n";
        let m = metrics_shipping(text);
        assert_eq!(m.backlog_seconds, Some(60.0));
        assert_eq!(m.failed_samples, 3.0);
        assert_eq!(
            metrics_line(&m),
            "1m behind (the WAL keeps 4h), 3 samples failed"
        );
        let fresh = metrics_shipping("prometheus_remote_storage_highest_timestamp_in_seconds 5\n");
        assert_eq!(fresh.backlog_seconds, None);
        assert_eq!(metrics_line(&fresh), "nothing sent yet (the WAL keeps 4h)");
    }

    #[test]
    fn logs_are_summed_over_the_pods_that_answered() {
        let pod = |sent: u32| {
            Some(format!(
                "loki_write_sent_entries_total{{component_id=\"loki.write.mgmt\"}} {sent}\n\
                 loki_write_dropped_entries_total{{component_id=\"loki.write.mgmt\",reason=\"x\"}} 1\n"
            ))
        };
        let l = logs_shipping(&[pod(10), None, pod(5)]);
        assert_eq!((l.shippers, l.answering), (3, 2));
        assert_eq!(
            (l.sent_entries, l.dropped_entries, l.batch_retries),
            (15.0, 2.0, 0.0)
        );
        assert_eq!(
            logs_line(&l),
            "2/3 Alloy answering, 15 entries sent, 2 dropped, 0 batch retries"
        );
    }

    #[test]
    fn sample_ages_come_from_the_query_answer_and_errors_say_so() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"cluster":"app1"},"value":[1700000100.5,"1700000070"]},
            {"metric":{"cluster":"mgmt"},"value":[1700000100.5,"1700000100"]}]}}"#;
        assert_eq!(
            sample_ages(body).unwrap(),
            [("app1".to_owned(), 30), ("mgmt".to_owned(), 0)]
        );
        let bad = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(sample_ages(bad).unwrap_err(), "Thanos Query: parse error");
        assert!(sample_ages("<html>").unwrap_err().contains("non-JSON"));
    }

    #[test]
    fn the_lines_say_k8sgpt_is_off_and_each_figure_or_why_not() {
        let v = ObservabilityView {
            k8sgpt: K8sgptView::default(),
            clusters: vec![ShippingView {
                cluster: "app1".into(),
                metrics: Some(Answer::Error("connection refused".into())),
                logs: None,
                newest_sample_age_seconds: Some(Answer::Ok(None)),
            }],
        };
        assert_eq!(
            lines(&v),
            [
                "k8sgpt: off (no backend in the topology: set observability.k8sgpt)",
                "app1: metrics: unknown (connection refused); newest sample on mgmt: none in the last 5m",
            ]
        );
    }
}
