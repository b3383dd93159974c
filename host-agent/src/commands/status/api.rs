//! The API column of `hostctl status`: each cluster's API server as seen
//! from the host, and node readiness, once its control plane reports an
//! initialised API server.

use super::StatusView;
use crate::cli::Context;
use crate::cluster_api::ClusterHealth;
use proto::v1::StatusResponse;

/// The node check that says whether a control plane's API server exists:
/// NOT_APPLICABLE before `kubeadm init`.
const API_SERVER_CHECK: &str = proto::contract::checks::APISERVER_READYZ;

/// Probes, from the host, each cluster whose control plane reports an
/// initialised API server: `/readyz` and node readiness through the admin
/// kubeconfig minted from the cluster CA. Clusters are probed concurrently,
/// each bounded by [`crate::cluster_api::health::STATUS_TIMEOUT`] per request, so a
/// dead cluster cannot stall status; without a PKI nothing is probed.
pub async fn with_api_health(
    mut v: StatusView,
    status: &StatusResponse,
    ctx: &Context,
) -> StatusView {
    let initialised = |cluster: &str| {
        status.nodes.iter().any(|n| {
            n.meta.as_ref().is_some_and(|m| m.cluster == cluster)
                && n.last_report.as_ref().is_some_and(|r| {
                    r.checks.iter().any(|k| {
                        k.name == API_SERVER_CHECK
                            && k.status != proto::v1::CheckStatus::NotApplicable as i32
                    })
                })
        })
    };
    let wanted: Vec<String> = v
        .clusters
        .iter()
        .filter(|c| !c.name.is_empty() && initialised(&c.name))
        .map(|c| c.name.clone())
        .collect();
    if wanted.is_empty() {
        return v;
    }
    let Ok(pki) = certs::Pki::open(ctx.home.root()) else {
        return v;
    };
    let Ok(workspace) = crate::workspace::Workspace::recorded(ctx) else {
        return v;
    };
    let resolved = workspace.resolved;
    // Probed side by side: a handful of clusters, so no bound is needed.
    let (pki, resolved) = (std::sync::Arc::new(pki), std::sync::Arc::new(resolved));
    let mut probes = tokio::task::JoinSet::new();
    for cluster in wanted {
        let (pki, resolved) = (pki.clone(), resolved.clone());
        probes.spawn(
            async move { crate::cluster_api::cluster_health(&pki, &resolved, &cluster).await },
        );
    }
    while let Some(done) = probes.join_next().await {
        let Ok(health) = done else { continue };
        if let Some(c) = v.clusters.iter_mut().find(|c| c.name == health.cluster) {
            c.api = Some(health);
        }
    }
    v
}

/// The API cell: `ok 2/2` (API ready, nodes Ready/expected), `down`, or `-`.
pub(super) fn api_cell(h: Option<&ClusterHealth>) -> String {
    match h {
        None => "-".to_owned(),
        Some(h) if h.api.ok => format!("ok {}", h.nodes_ready.as_deref().unwrap_or("?")),
        Some(_) => "down".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::reported_control_plane;
    use super::super::{table, view};
    use super::*;
    use crate::output::OutputFormat;
    use proto::v1::Check;
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    fn context_without_pki() -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context {
            home: crate::home::Home::resolve(Some(dir.path().to_path_buf())),
            output: OutputFormat::Json,
            topology: None,
        };
        (dir, ctx)
    }

    #[tokio::test]
    async fn api_is_not_probed_before_the_control_plane_is_initialised() {
        // The control plane reports its API server check as not applicable
        // (before kubeadm init): nothing to probe, and status says `-`.
        let mut status = reported_control_plane();
        if let Some(r) = status.nodes[0].last_report.as_mut() {
            r.checks.push(Check {
                name: API_SERVER_CHECK.into(),
                status: proto::v1::CheckStatus::NotApplicable as i32,
                message: "not initialised yet".into(),
            });
        }
        let (_dir, ctx) = context_without_pki();
        let now = SystemTime::now();
        let v = with_api_health(view(&status, &BTreeMap::new(), now), &status, &ctx).await;
        assert!(v.clusters[0].api.is_none());
        assert!(table(&v).to_string().contains("app1-cp"));
        let json = serde_json::to_value(&v).unwrap();
        assert!(json["clusters"][0]["api"].is_null(), "{json}");
    }

    #[test]
    fn api_cell_shows_readiness_or_down() {
        let health = |ok: bool| ClusterHealth {
            cluster: "app1".into(),
            api: crate::cluster_api::health::ApiHealth {
                ok,
                version: Some("v1.35.0".into()),
                error: (!ok).then(|| "connection refused".into()),
            },
            nodes_ready: ok.then(|| "1/2".into()),
            nodes_detail: None,
        };
        assert_eq!(api_cell(None), "-");
        assert_eq!(api_cell(Some(&health(true))), "ok 1/2");
        assert_eq!(api_cell(Some(&health(false))), "down");
    }
}
