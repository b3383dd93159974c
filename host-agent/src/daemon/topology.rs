//! A [`DaemonConfig`] from a topology: the resolved topology fixes the
//! nodes that may enrol (and their certificate addresses), where the daemon
//! binds (`hostAgent.listen`, else the node network's host address and
//! loopback; `hostAgent.port`), the enrolment port
//! (`hostAgent.port + 1`; the topology has no field for it) and the
//! address nodes are told to dial (`hostAgent.address`). The platform Git
//! server listens on the same addresses, port [`crate::gitops::GIT_PORT`],
//! and the metrics endpoint on [`crate::agent_plane::HOST_METRICS_PORT`].

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::config::{DaemonConfig, NodeEntry};
use crate::agent_plane::enrol_port_for;

/// The daemon's configuration for an already resolved topology.
pub fn config_from_resolved(home: PathBuf, resolved: &topology::Resolved) -> DaemonConfig {
    let mut config = DaemonConfig::new(home);
    let listen = resolved.host_agent_listen();
    config.listen = listen.ip();
    config.also_loopback = resolved.host_agent_listen_is_default();
    config.port = listen.port();
    config.enrol_port = enrol_port_for(listen.port());
    config.advertise = Some(IpAddr::V4(resolved.host_agent_address()));
    config.git_port = Some(crate::gitops::GIT_PORT);
    config.metrics_port = Some(crate::agent_plane::HOST_METRICS_PORT);
    config.vault =
        crate::secrets::address_override().or_else(|| crate::secrets::vault_url(resolved).ok());
    for cluster in resolved.topology().clusters() {
        if let Some(cp) = resolved.topology().control_plane(&cluster.name) {
            config
                .control_planes
                .insert(cluster.name.clone(), cp.name.clone());
        }
    }
    for node in resolved.topology().nodes() {
        let addresses: Vec<IpAddr> = resolved
            .node_ip(&node.name)
            .map(|ip: Ipv4Addr| vec![IpAddr::V4(ip)])
            .unwrap_or_default();
        config.nodes.insert(
            node.name.clone(),
            NodeEntry {
                cluster: node.cluster.clone(),
                addresses,
            },
        );
    }
    config
}
