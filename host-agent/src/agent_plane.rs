//! Fixed conventions of the agent plane that more than one module (the
//! daemon, `hostctl logs`, the providers that render node configuration)
//! must agree on. The node agent cannot depend on this crate, so its own
//! defaults must equal these numbers; they are also in docs.

use std::time::Duration;

/// The host's mutual-TLS Host service (node reports), unless the topology
/// or `hostctl daemon --port` says otherwise.
pub const HOST_SERVICE_PORT: u16 = 7443;

/// The Enrolment service listens on the Host service's port + 1 (the
/// topology has no field for it): it must be a separate listener because
/// it cannot ask for a client certificate, while the Host service must.
pub const fn enrol_port_for(host_port: u16) -> u16 {
    host_port.wrapping_add(1)
}

/// Every node agent's mutual-TLS Node service (logs, health, kubeadm).
pub const NODE_SERVICE_PORT: u16 = 7445;

/// Reporting interval assumed for a node whose report does not carry one.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// A node is stale after this many reporting intervals without a report.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// Lifetime of a node certificate issued at enrolment.
pub const NODE_CERT_VALIDITY_DAYS: u32 = 365;

/// Lifetime of an enrolment token when the caller does not choose one.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
