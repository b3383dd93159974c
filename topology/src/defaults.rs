//! The built-in topology: the seed specification's environment, exactly.
//!
//! SPEC §5 and §6: three clusters (mgmt, app1, app2), one control plane and one
//! worker each, host numbers .10/.11, .20/.21, .30/.31 in 192.168.64.0/24, pod
//! CIDRs 10.100–10.102/16, service CIDRs 10.96–10.98/16 (set explicitly: the
//! pod CIDRs lie inside kubeadm's default 10.96.0.0/12), MetalLB pools
//! .200–.210, .211–.220, .221–.230, and the sizes of the node table.

use crate::address::Address;
use crate::emit;
use crate::model::{
    Addressing, Cluster, ClusterRole, HostAgent, Network, Node, NodeRole, Pool, Topology,
};
use crate::units::ByteSize;
use crate::version::KubeVersion;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// The host agent when the file does not say otherwise: nodes dial host
/// number 1 (the host's side of the bridge, as vmnet and the local bridge
/// both use) on 7443, and the agent binds that address only (no `listen`).
pub const DEFAULT_HOST_AGENT: HostAgent = HostAgent {
    address: Address::Host(1),
    port: 7443,
    listen: None,
};

/// The Kubernetes version the spec builds (kubeadm v1.35).
pub const DEFAULT_KUBERNETES_VERSION: KubeVersion = KubeVersion {
    minor: 35,
    patch: Some(0),
};

/// The spec's environment as a [`Topology`].
pub fn default_topology() -> Topology {
    let cluster = |name: &str, role, second_octet: u8, pool: (u32, u32)| Cluster {
        name: name.to_owned(),
        role,
        kubernetes_version: DEFAULT_KUBERNETES_VERSION,
        pod_cidr: net(Ipv4Addr::new(10, 100 + second_octet, 0, 0), 16),
        service_cidr: net(Ipv4Addr::new(10, 96 + second_octet, 0, 0), 16),
        metallb_pool: Pool {
            start: Address::Host(pool.0),
            end: Address::Host(pool.1),
        },
    };
    let node = |name: &str, cluster: &str, role, host, memory_gib, disk_gib| Node {
        name: name.to_owned(),
        cluster: cluster.to_owned(),
        role,
        address: Address::Host(host),
        cpus: 2,
        memory: ByteSize::gib(memory_gib),
        disk: ByteSize::gib(disk_gib),
    };
    use ClusterRole::{App, Mgmt};
    use NodeRole::{ControlPlane as Cp, Worker};
    Topology {
        network: Network {
            cidr: net(Ipv4Addr::new(192, 168, 64, 0), 24),
            addressing: Addressing::Provider,
        },
        host_agent: DEFAULT_HOST_AGENT,
        clusters: vec![
            cluster("mgmt", Mgmt, 0, (200, 210)),
            cluster("app1", App, 1, (211, 220)),
            cluster("app2", App, 2, (221, 230)),
        ],
        nodes: vec![
            node("mgmt-cp", "mgmt", Cp, 10, 4, 40),
            node("mgmt-worker-0", "mgmt", Worker, 11, 6, 60),
            node("app1-cp", "app1", Cp, 20, 3, 30),
            node("app1-worker-0", "app1", Worker, 21, 4, 40),
            node("app2-cp", "app2", Cp, 30, 3, 30),
            node("app2-worker-0", "app2", Worker, 31, 4, 40),
        ],
        mirrors: None,
        backups: None,
        telemetry: None,
        observability: None,
    }
}

/// The default as the commented file `hostctl init` writes for the user to
/// edit; it parses back to exactly [`default_topology`].
pub fn default_yaml() -> String {
    emit::to_yaml(
        &default_topology(),
        "hostctl topology: the clusters and VMs `hostctl up` builds.\n\
         Edit freely, then check it with `hostctl validate`.\n\
         Format and addressing rules: topology/README.md in the hostctl sources.\n",
    )
}

/// A network from an address and prefix that are known to be valid.
fn net(addr: Ipv4Addr, prefix: u8) -> Ipv4Net {
    Ipv4Net::new(addr, prefix).unwrap_or_default()
}
