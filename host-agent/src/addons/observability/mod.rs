//! Observability (ADR-006, C2): where the platform's telemetry goes. The
//! mgmt cluster holds the stores (Thanos Receive, Loki, Tempo) and Grafana
//! on fixed addresses of its MetalLB pool
//! ([`MgmtService`](crate::cluster_config::cluster::MgmtService)); the app
//! clusters' agents write to those addresses and buffer while mgmt is away.

pub mod agent_plane;
pub mod alloy;
pub mod buffer;
pub mod dashboards;
pub mod grafana;
pub mod loki;
pub mod metrics_text;
pub mod prometheus;
pub mod rules;
pub mod shipping;
pub mod tempo;
pub mod thanos;

use super::error::AddonError;
use crate::cluster_config::cluster::{MgmtService, mgmt_service_address};
use topology::Resolved;

/// Every observability component's namespace, on every cluster.
pub const NAMESPACE: &str = "monitoring";
/// Thanos Receive's remote-write port (the router's HTTP listener).
pub const REMOTE_WRITE_PORT: u16 = 19291;
/// Loki's HTTP port (push and query).
pub const LOKI_PORT: u16 = 3100;
/// Tempo's OTLP/gRPC receiver.
pub const OTLP_GRPC_PORT: u16 = 4317;
/// Grafana's Service port.
pub const GRAFANA_PORT: u16 = 80;

/// The URLs the platform's telemetry clients use, all on mgmt's reserved
/// addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Prometheus remote write into Thanos Receive.
    pub remote_write: String,
    /// Loki's push API (Alloy's `loki.write`, Falco's alerts).
    pub logs_push: String,
    /// Loki's base URL (queries, readiness).
    pub logs: String,
    /// OTLP/gRPC into Tempo (`hostctl up`'s traces).
    pub traces_otlp: String,
    /// Grafana in the user's browser.
    pub grafana: String,
}

/// The endpoints of `resolved`'s mgmt cluster; `addon` names the add-on
/// asking, for the error.
pub fn endpoints(resolved: &Resolved, addon: &str) -> Result<Endpoints, AddonError> {
    let at = |service| {
        mgmt_service_address(resolved, service).map_err(|reason| AddonError::Topology {
            addon: addon.to_owned(),
            reason,
        })
    };
    let metrics = at(MgmtService::Metrics)?;
    let logs = at(MgmtService::Logs)?;
    let traces = at(MgmtService::Traces)?;
    let grafana = at(MgmtService::Grafana)?;
    Ok(Endpoints {
        remote_write: format!("http://{metrics}:{REMOTE_WRITE_PORT}/api/v1/receive"),
        logs_push: format!("http://{logs}:{LOKI_PORT}/loki/api/v1/push"),
        logs: format!("http://{logs}:{LOKI_PORT}"),
        traces_otlp: format!("http://{traces}:{OTLP_GRPC_PORT}"),
        grafana: format!("http://{grafana}:{GRAFANA_PORT}"),
    })
}
