//! Loki on mgmt in monolithic mode (platform-addons §2.7): one binary,
//! 30 GiB on `local-path`, seven days of retention, on mgmt's reserved
//! logs address so every cluster's log shipper (and Falco) pushes to a
//! fixed URL. The chart's memcached caches (8 GiB and 1 GiB by default)
//! are off: they alone would not schedule on the lab's 6 GiB worker.

use super::{LOKI_PORT, NAMESPACE};
use crate::addons::budget::{Resources, Workload, resources_of};
use crate::addons::catalogue::{Addon, Chart, ChartRepo, Placement, Readiness};
use crate::addons::error::AddonError;
use crate::addons::render::{RenderContext, no_objects};
use crate::cluster_config::cluster::{MgmtService, mgmt_service_address};
use serde_json::{Value, json};

/// The grafana-community chart (Loki 3.7.6; the grafana/loki chart is
/// enterprise-only since the move).
pub const CHART: Chart = Chart {
    repo: ChartRepo::Oci("oci://ghcr.io/grafana-community/helm-charts"),
    name: "loki",
    version: "18.11.0",
    digest: None,
};

/// Seven days (SPEC §7), as Loki writes durations.
pub const RETENTION: &str = "168h";

/// SPEC §12's Loki sizes.
const WORKLOADS: &[Workload] = &[Workload::one(
    "loki",
    Resources::new(100, 256),
    Resources::new(500, 1024),
    300,
)];

pub const LOKI: Addon = Addon {
    name: "loki",
    summary: "Loki (monolithic, 7 days): every cluster's logs",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: false,
    values,
    objects: no_objects,
    readiness: &[Readiness::StatefulSet("loki")],
    workloads: WORKLOADS,
    hook: None,
};

/// The chart's values: keys as in loki 18.11.0's `values.yaml`.
fn values(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let ip = mgmt_service_address(ctx.resolved, MgmtService::Logs).map_err(|reason| {
        AddonError::Topology {
            addon: LOKI.name.into(),
            reason,
        }
    })?;
    Ok(json!({
        "fullnameOverride": "loki",
        "deploymentMode": "Monolithic",
        "loki": {
            "auth_enabled": false,
            "commonConfig": {"replication_factor": 1},
            "storage": {"type": "filesystem"},
            "schemaConfig": {"configs": [{
                "from": "2024-04-01", "store": "tsdb", "object_store": "filesystem",
                "schema": "v13", "index": {"prefix": "index_", "period": "24h"},
            }]},
            // The chart's `limits_config` has fixed keys; retention goes
            // through the structured config it merges last.
            "structuredConfig": {"limits_config": {"retention_period": RETENTION}},
            "compactor": {"retention_enabled": true, "delete_request_store": "filesystem"},
            "server": {"http_listen_port": LOKI_PORT},
        },
        "singleBinary": {
            "replicas": 1,
            "persistence": {"size": "30Gi", "storageClass": "local-path"},
            "resources": resources_of(WORKLOADS, "loki"),
            "service": {
                "type": "LoadBalancer",
                "annotations": {"metallb.io/loadBalancerIPs": ip.to_string()},
            },
        },
        "read": {"replicas": 0},
        "write": {"replicas": 0},
        "backend": {"replicas": 0},
        "chunksCache": {"enabled": false},
        "resultsCache": {"enabled": false},
        "lokiCanary": {"enabled": false},
        "test": {"enabled": false},
        "gateway": {"enabled": false},
    }))
}
