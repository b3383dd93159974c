//! Fixed conventions of the agent plane that more than one module (the
//! daemon, `hostctl logs`, the providers that render node configuration)
//! must agree on. What the node agent must agree on too comes from
//! [`proto::contract`], the crate both agents depend on.

use std::time::Duration;

/// The host's mutual-TLS Host service (node reports), unless the topology
/// or `hostctl daemon --port` says otherwise.
pub const HOST_SERVICE_PORT: u16 = proto::contract::ports::HOST_SERVICE;

/// The Enrolment service's port for a Host service port.
pub const fn enrol_port_for(host_port: u16) -> u16 {
    proto::contract::ports::enrolment_for(host_port)
}

/// Every node agent's mutual-TLS Node service (logs, health, kubeadm).
pub const NODE_SERVICE_PORT: u16 = proto::contract::ports::NODE_SERVICE;

/// The daemon's metrics endpoint (docs/observability.md, "hostctl's own
/// metrics").
pub const HOST_METRICS_PORT: u16 = proto::contract::ports::HOST_METRICS;

/// Every node agent's metrics endpoint.
pub const NODE_METRICS_PORT: u16 = proto::contract::ports::NODE_METRICS;

/// Reporting interval assumed for a node whose report does not carry one.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// A node is stale after this many reporting intervals without a report.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// Lifetime of a node certificate issued at enrolment.
pub const NODE_CERT_VALIDITY_DAYS: u32 = 365;

/// Lifetime of an enrolment token when the caller does not choose one.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    /// cloud-init cannot depend on the agents' contract crate (it renders
    /// files, nothing of gRPC), so its copy of the number is checked here,
    /// where both are in reach.
    #[test]
    fn the_unit_stops_restarting_on_the_agents_new_token_status() {
        assert_eq!(
            cloud_init::systemd::NODE_AGENT_NEEDS_NEW_TOKEN,
            proto::contract::EXIT_NEEDS_NEW_TOKEN
        );
    }
}
