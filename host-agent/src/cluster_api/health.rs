//! Per-cluster API health and node readiness for `hostctl status`: two
//! separate facts (pain point 9 of the anchors: "API up" is not "nodes
//! Ready"), each with a short limit so a dead cluster cannot stall status.

use super::client::admin_client;
use super::ready::{ReadyReport, node_states};
use certs::Pki;
use serde::Serialize;
use std::time::{Duration, Instant};
use topology::Resolved;

/// The per-request limit of a status probe.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the API server answers `/readyz`, and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiHealth {
    pub ok: bool,
    /// `gitVersion` from `/version`, e.g. `v1.35.2`.
    pub version: Option<String>,
    pub error: Option<String>,
}

/// One cluster's line in `hostctl status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterHealth {
    pub cluster: String,
    pub api: ApiHealth,
    /// `ready/expected`, e.g. `2/2`; `None` when the API did not answer.
    pub nodes_ready: Option<String>,
    /// What is wrong with the nodes (empty when all are Ready).
    pub nodes_detail: Option<String>,
}

/// Probes `GET /readyz` (which includes etcd) and `GET /version`.
pub async fn api_health(client: &kube::Client) -> ApiHealth {
    let request = http::Request::get("/readyz").body(Vec::new());
    let readyz = match request {
        Ok(req) => client
            .request_text(req)
            .await
            .map_err(|e| super::apply::classify(e, "GET /readyz").to_string()),
        Err(e) => Err(e.to_string()),
    };
    match readyz {
        Ok(_) => ApiHealth {
            ok: true,
            version: client.apiserver_version().await.ok().map(|v| v.git_version),
            error: None,
        },
        Err(error) => ApiHealth {
            ok: false,
            version: None,
            error: Some(error),
        },
    }
}

/// API health and node readiness of `cluster` through `client`; `expected`
/// are the topology's node names.
pub async fn health_with_client(
    client: &kube::Client,
    cluster: &str,
    expected: &[String],
) -> ClusterHealth {
    let start = Instant::now();
    let api = api_health(client).await;
    let (nodes_ready, nodes_detail) = if api.ok {
        match node_states(client).await {
            Ok(states) => {
                let report = ReadyReport::from_states(expected, &states, start.elapsed());
                let detail = (!report.all_ready()).then(|| report.to_string());
                (Some(report.ratio()), detail)
            }
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    ClusterHealth {
        cluster: cluster.to_owned(),
        api,
        nodes_ready,
        nodes_detail,
    }
}

/// [`health_with_client`] with a freshly minted admin client and
/// [`STATUS_TIMEOUT`] per request. Never fails: problems become fields.
pub async fn cluster_health(pki: &Pki, resolved: &Resolved, cluster: &str) -> ClusterHealth {
    let expected: Vec<String> = resolved
        .topology()
        .nodes_of(cluster)
        .map(|n| n.name.clone())
        .collect();
    match admin_client(pki, resolved, cluster, STATUS_TIMEOUT).await {
        Ok((client, _)) => health_with_client(&client, cluster, &expected).await,
        Err(e) => ClusterHealth {
            cluster: cluster.to_owned(),
            api: ApiHealth {
                ok: false,
                version: None,
                error: Some(e.to_string()),
            },
            nodes_ready: None,
            nodes_detail: None,
        },
    }
}
