//! The facts both agents must agree on beyond the messages themselves:
//! ports, the names of the checks a node reports and the host reads, the
//! paths an agent uses on its machine, and the exit status that means "only
//! a new enrolment token can help" (issue 15, item 2).
//!
//! They live here, in the crate both agents depend on (as Talos keeps them
//! in `pkg/machinery` and Kata in `kata-types`), so that a number or name
//! cannot drift between the host and the node: each side uses the constant,
//! never a literal of its own. The agents still never depend on each other.

/// Ports of the agent plane.
pub mod ports {
    /// The host's mutual-TLS Host service (node reports), unless the
    /// topology or `hostctl daemon --port` says otherwise.
    pub const HOST_SERVICE: u16 = 7443;

    /// The Enrolment service listens on the Host service's port + 1 (the
    /// topology has no field for it): it must be a separate listener because
    /// it cannot ask for a client certificate, while the Host service must.
    pub const fn enrolment_for(host_port: u16) -> u16 {
        host_port.wrapping_add(1)
    }

    /// Every node agent's mutual-TLS Node service (logs, health, kubeadm).
    pub const NODE_SERVICE: u16 = 7445;

    /// Every node agent's mutual-TLS `GET /metrics` (mgmt's Prometheus,
    /// identity `hostctl:metrics` only).
    pub const NODE_METRICS: u16 = 7446;

    /// The host daemon's mutual-TLS `GET /metrics` (7447 is the platform
    /// Git server).
    pub const HOST_METRICS: u16 = 7448;
}

/// Names of the checks in a `HealthReport`, as the node agent reports them
/// and the host reads them (`hostctl status`, `up`'s readiness).
pub mod checks {
    /// kubelet's `/healthz`.
    pub const KUBELET_HEALTHZ: &str = "kubelet-healthz";
    /// The local API server's `/readyz` (control planes).
    pub const APISERVER_READYZ: &str = "apiserver-readyz";
    /// The local etcd member's health (control planes).
    pub const ETCD_HEALTH: &str = "etcd-health";
    /// The CNI configuration is in place.
    pub const CNI: &str = "cni";
    /// The nearest expiry of a certificate under `/etc/kubernetes/pki`.
    pub const CERTIFICATES: &str = "certificates";
    /// cloud-init finished.
    pub const CLOUD_INIT: &str = "cloud-init";
}

/// Paths on a node's machine.
pub mod paths {
    /// The agent's state: its key, certificate, token digest, attempts.
    pub const STATE_DIR: &str = "/var/lib/hostctl-agent";
}

/// The node agent's exit status when it has no usable certificate and its
/// enrolment token is missing, spent or refused: restarting it with the
/// same configuration would fail the same way, so the systemd unit hostctl
/// installs does not (`RestartPreventExitStatus=`).
pub const EXIT_NEEDS_NEW_TOKEN: u8 = 3;
