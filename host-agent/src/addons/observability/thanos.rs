//! Thanos on mgmt (platform-addons §2.6), from the maintained
//! stevehipwell chart with upstream images: Receive (router + ingestor)
//! takes the app clusters' remote write on mgmt's reserved metrics
//! address; Query answers over Receive, mgmt Prometheus' sidecar and
//! Thanos Ruler. No bucket yet: the ingestor keeps 15 days in its own
//! TSDB and uploads nothing (an empty objstore file is Thanos' "uploads
//! disabled"); long-term storage comes with the object store on the host.

use super::prometheus::{THANOS_DISCOVERY, THANOS_RULER};
use super::{NAMESPACE, REMOTE_WRITE_PORT};
use crate::addons::budget::{Resources, Workload, resources_of};
use crate::addons::catalogue::{Addon, Chart, ChartRepo, Manifest, Placement, Readiness};
use crate::addons::error::AddonError;
use crate::addons::render::{RenderContext, manifest};
use crate::cluster_config::cluster::{MgmtService, mgmt_service_address};
use serde_json::{Value, json};

pub const CHART: Chart = Chart {
    repo: ChartRepo::Oci("oci://ghcr.io/stevehipwell/helm-charts"),
    name: "thanos",
    version: "1.24.1",
    digest: None,
};

/// The Service hostctl adds in front of Thanos Ruler's gRPC StoreAPI (the
/// chart's Service has only its web port), so Query serves the results of
/// recording rules.
pub const RULER_GRPC: &str = "kps-thanos-ruler-grpc";

/// Thanos Query's Service and HTTP port (Grafana's datasource, the ruler).
pub const QUERY: &str = "thanos-query";
pub const QUERY_HTTP_PORT: u16 = 10902;

/// SPEC §12 "Thanos" for the ingestor; the reference's sizes for the rest.
const WORKLOADS: &[Workload] = &[
    Workload::one(
        "thanos-receive-ingestor",
        Resources::new(100, 256),
        Resources::new(500, 1024),
        300,
    ),
    Workload::one(
        "thanos-receive-router",
        Resources::new(20, 64),
        Resources::new(0, 256),
        60,
    ),
    Workload::one(
        "thanos-query",
        Resources::new(50, 64),
        Resources::new(0, 256),
        80,
    ),
];

pub const THANOS: Addon = Addon {
    name: "thanos",
    summary: "Thanos Receive (the app clusters' metrics) and Query (every cluster's)",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    depends_on: &["prometheus-stack"],
    after_mgmt: &[],
    needs_backup_target: false,
    values,
    objects,
    readiness: &[
        Readiness::StatefulSet("thanos-receive-ingestor"),
        Readiness::Deployment("thanos-receive-router"),
        Readiness::Deployment("thanos-query"),
    ],
    workloads: WORKLOADS,
    hook: None,
};

/// Where Thanos Ruler sends its queries (`--query`: host:port).
pub fn query_address() -> String {
    format!("{QUERY}.{NAMESPACE}.svc:{QUERY_HTTP_PORT}")
}

/// The chart's values: keys as in thanos 1.24.1's `values.yaml`.
fn values(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let ip = mgmt_service_address(ctx.resolved, MgmtService::Metrics).map_err(|reason| {
        AddonError::Topology {
            addon: THANOS.name.into(),
            reason,
        }
    })?;
    Ok(json!({
        "fullnameOverride": "thanos",
        "objstoreConfig": {"create": true, "value": ""},
        "additionalEndpoints": [
            format!("dnssrv+_grpc._tcp.{THANOS_DISCOVERY}.{NAMESPACE}.svc.cluster.local"),
            format!("dnssrv+_grpc._tcp.{RULER_GRPC}.{NAMESPACE}.svc.cluster.local"),
        ],
        "query": {"enabled": true, "replicas": 1, "resources": resources_of(WORKLOADS, "thanos-query")},
        "storeGateway": {"enabled": false},
        "compact": {"enabled": false},
        "receive": {
            "enabled": true,
            "replicationFactor": 1,
            "retention": "15d",
            "ingestor": {
                "replicas": 1,
                "persistence": {"enabled": true, "storageClass": "local-path", "size": "10Gi"},
                "resources": resources_of(WORKLOADS, "thanos-receive-ingestor"),
            },
            "router": {
                "replicas": 1,
                "resources": resources_of(WORKLOADS, "thanos-receive-router"),
                "service": {
                    "type": "LoadBalancer",
                    "httpRemoteWritePort": REMOTE_WRITE_PORT,
                    "annotations": {"metallb.io/loadBalancerIPs": ip.to_string()},
                },
            },
        },
    }))
}

/// The Service that gives Query the ruler's StoreAPI: the operator's
/// ThanosRuler pods, their `grpc` port.
fn objects(_: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": RULER_GRPC, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "spec": {
            "selector": {"app.kubernetes.io/name": "thanos-ruler", "thanos-ruler": THANOS_RULER},
            "ports": [{"name": "grpc", "port": 10901, "targetPort": "grpc"}],
        },
    });
    Ok(vec![manifest(
        "10-ruler-grpc.yaml",
        "Thanos Ruler's StoreAPI for Thanos Query (recording rules' results).",
        &[service],
    )?])
}
