//! Grafana on mgmt (platform-addons §2.8), its own release of the
//! grafana-community chart: Thanos Query (every cluster's metrics), Loki
//! and Tempo as provisioned datasources, and one dashboard per concern
//! ([`super::dashboards`]), on mgmt's reserved Grafana address. The admin
//! password is the chart's: generated at install into the `grafana`
//! Secret, never rendered.

use super::dashboards;
use super::{GRAFANA_PORT, LOKI_PORT, NAMESPACE};
use crate::addons::budget::{Resources, Workload, resources_of};
use crate::addons::catalogue::{Addon, Chart, ChartRepo, Placement, Readiness};
use crate::addons::error::AddonError;
use crate::addons::render::{RenderContext, no_objects};
use crate::cluster_config::cluster::{MgmtService, mgmt_service_address};
use serde_json::{Value, json};

pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://grafana-community.github.io/helm-charts"),
    name: "grafana",
    version: "12.11.1",
    digest: None,
};

/// SPEC §12's Grafana sizes.
const WORKLOADS: &[Workload] = &[Workload::one(
    "grafana",
    Resources::new(100, 128),
    Resources::new(500, 512),
    150,
)];

pub const GRAFANA: Addon = Addon {
    name: "grafana",
    summary: "Grafana: metrics (Thanos), logs (Loki) and traces (Tempo) of every cluster",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    depends_on: &["thanos", "loki", "tempo"],
    after_mgmt: &[],
    needs_backup_target: false,
    values,
    objects: no_objects,
    readiness: &[Readiness::Deployment("grafana")],
    workloads: WORKLOADS,
    hook: None,
};

/// The provisioned datasources, by in-cluster Service.
fn datasources() -> Value {
    let thanos = format!(
        "http://{}.{NAMESPACE}.svc:{}",
        super::thanos::QUERY,
        super::thanos::QUERY_HTTP_PORT
    );
    let loki = format!("http://loki.{NAMESPACE}.svc:{LOKI_PORT}");
    let tempo = format!(
        "http://{}.{NAMESPACE}.svc:{}",
        super::tempo::NAME,
        super::tempo::QUERY_PORT
    );
    json!({"datasources.yaml": {"apiVersion": 1, "datasources": [
        {"name": "Thanos", "uid": "thanos", "type": "prometheus", "url": thanos,
         "access": "proxy", "isDefault": true},
        {"name": "Loki", "uid": "loki", "type": "loki", "url": loki, "access": "proxy"},
        {"name": "Tempo", "uid": "tempo", "type": "tempo", "url": tempo, "access": "proxy"},
    ]}})
}

/// The chart's values: keys as in grafana 12.11.1's `values.yaml`.
fn values(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let ip = mgmt_service_address(ctx.resolved, MgmtService::Grafana).map_err(|reason| {
        AddonError::Topology {
            addon: GRAFANA.name.into(),
            reason,
        }
    })?;
    let dashboards: serde_json::Map<String, Value> = dashboards::all()
        .into_iter()
        .map(|(name, json)| (name.to_owned(), json!({"json": json})))
        .collect();
    Ok(json!({
        "testFramework": {"enabled": false},
        "persistence": {"enabled": true, "size": "2Gi"},
        "resources": resources_of(WORKLOADS, "grafana"),
        "service": {
            "type": "LoadBalancer",
            "port": GRAFANA_PORT,
            "annotations": {"metallb.io/loadBalancerIPs": ip.to_string()},
        },
        "datasources": datasources(),
        "dashboardProviders": {"dashboardproviders.yaml": {"apiVersion": 1, "providers": [{
            "name": "hostctl", "orgId": 1, "folder": "hostctl", "type": "file",
            "disableDeletion": true, "editable": false,
            "options": {"path": "/var/lib/grafana/dashboards/hostctl"},
        }]}},
        "dashboards": {"hostctl": dashboards},
    }))
}
