//! Tempo on mgmt, monolithic, as objects hostctl renders itself (one
//! Deployment, its configuration and volume, two Services): the traces
//! of hostctl's own provisioning land here. Its OTLP receiver is on mgmt's
//! reserved traces address, so `hostctl up` on the host can export to it
//! ([`crate::up_trace`] picks it as the default endpoint once it
//! answers); Grafana reads it in-cluster. No chart: the component is one
//! process with a small file, and rendering it keeps its every field
//! checked against the Kubernetes schemas like the rest.

use super::{NAMESPACE, OTLP_GRPC_PORT};
use crate::addons::budget::{Resources, Workload, resources_of};
use crate::addons::catalogue::{Addon, Manifest, Placement, Readiness};
use crate::addons::error::AddonError;
use crate::addons::render::{RenderContext, manifest, no_values};
use crate::cluster_config::cluster::{MgmtService, mgmt_service_address};
use serde_json::{Value, json};

/// The Deployment's and query Service's name.
pub const NAME: &str = "tempo";
/// The LoadBalancer Service for OTLP from the host.
pub const OTLP_SERVICE: &str = "tempo-otlp";
/// Tempo's HTTP (query) port.
pub const QUERY_PORT: u16 = 3200;
/// OTLP over HTTP.
pub const OTLP_HTTP_PORT: u16 = 4318;
/// The pinned image.
pub const IMAGE: &str = "docker.io/grafana/tempo:2.8.2";
/// How long traces are kept (the logs' seven days).
pub const RETENTION: &str = "168h";

const WORKLOADS: &[Workload] = &[Workload::one(
    NAME,
    Resources::new(50, 128),
    Resources::new(500, 512),
    100,
)];

pub const TEMPO: Addon = Addon {
    name: "tempo",
    summary: "Tempo: the traces of hostctl's own provisioning (OTLP on mgmt's traces address)",
    chart: None,
    namespace: NAMESPACE,
    placement: Placement::Mgmt,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: false,
    values: no_values,
    objects,
    readiness: &[Readiness::Deployment(NAME)],
    workloads: WORKLOADS,
    hook: None,
};

/// Tempo's configuration file.
fn config() -> String {
    format!(
        "server:\n  http_listen_port: {QUERY_PORT}\n\
         distributor:\n  receivers:\n    otlp:\n      protocols:\n        \
         grpc:\n          endpoint: 0.0.0.0:{OTLP_GRPC_PORT}\n        \
         http:\n          endpoint: 0.0.0.0:{OTLP_HTTP_PORT}\n\
         storage:\n  trace:\n    backend: local\n    wal:\n      path: /var/tempo/wal\n    \
         local:\n      path: /var/tempo/blocks\n\
         compactor:\n  compaction:\n    block_retention: {RETENTION}\n"
    )
}

fn labels() -> Value {
    json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "hostctl"})
}

fn objects(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    let ip = mgmt_service_address(ctx.resolved, MgmtService::Traces).map_err(|reason| {
        AddonError::Topology {
            addon: TEMPO.name.into(),
            reason,
        }
    })?;
    let selector = json!({"app.kubernetes.io/name": NAME});
    let meta = |name: &str| json!({"name": name, "namespace": NAMESPACE, "labels": labels()});
    let config_map = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(NAME),
        "data": {"tempo.yaml": config()},
    });
    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(NAME),
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                 "resources": {"requests": {"storage": "5Gi"}}},
    });
    let port = |name: &str, port: u16| json!({"name": name, "containerPort": port});
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(NAME),
        "spec": {
            "replicas": 1,
            // One writer of a ReadWriteOnce volume.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 10001,
                                        "runAsGroup": 10001, "fsGroup": 10001,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": NAME,
                        "image": IMAGE,
                        "args": ["-config.file=/etc/tempo/tempo.yaml"],
                        "ports": [port("http", QUERY_PORT), port("otlp-grpc", OTLP_GRPC_PORT),
                                  port("otlp-http", OTLP_HTTP_PORT)],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                        "resources": resources_of(WORKLOADS, NAME),
                        "securityContext": {"allowPrivilegeEscalation": false,
                                            "readOnlyRootFilesystem": true,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/tempo"},
                                         {"name": "data", "mountPath": "/var/tempo"}],
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": NAME}},
                                {"name": "data", "persistentVolumeClaim": {"claimName": NAME}}],
                },
            },
        },
    });
    let query = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": meta(NAME),
        "spec": {"selector": selector,
                 "ports": [{"name": "http", "port": QUERY_PORT, "targetPort": "http"}]},
    });
    let mut otlp_meta = meta(OTLP_SERVICE);
    otlp_meta["annotations"] = json!({"metallb.io/loadBalancerIPs": ip.to_string()});
    let otlp = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": otlp_meta,
        "spec": {"type": "LoadBalancer", "selector": selector, "ports": [
            {"name": "otlp-grpc", "port": OTLP_GRPC_PORT, "targetPort": "otlp-grpc"},
            {"name": "otlp-http", "port": OTLP_HTTP_PORT, "targetPort": "otlp-http"},
        ]},
    });
    Ok(vec![manifest(
        "10-tempo.yaml",
        "Tempo, monolithic: its configuration, volume and Deployment, the query\n\
         Service for Grafana and the OTLP Service on mgmt's traces address.",
        &[config_map, claim, deployment, query, otlp],
    )?])
}
