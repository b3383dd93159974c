//! Resolution: from a topology as written to concrete addresses.
//!
//! The rule (also in the README): with `addressing: provider` and a subnet
//! reported by the provider, every host number is placed in *that* subnet,
//! keeping its number (.10 stays .10 whether the network is 192.168.64.0/24 or
//! 192.168.252.0/24). Literal IPv4 addresses never move, so one outside the
//! provider's subnet is an error naming the field and both subnets. With
//! `addressing: fixed`, or when no subnet is reported (a provider that builds
//! the network from the topology), `network.cidr` is the subnet; a provider
//! reporting a different one under `fixed` is an error. All checks run again
//! against the subnet actually used.

use crate::address::Address;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::emit;
use crate::load::Loaded;
use crate::model::{Addressing, Topology};
use crate::report::{Report, SourceMap};
use crate::validate::{Placed, validate};
use ipnet::Ipv4Net;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// A topology with every address concrete, ready to provision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    topology: Topology,
    host_agent: Ipv4Addr,
    warnings: Vec<Diagnostic>,
}

/// An inclusive address range, displayed as MetalLB's `IPAddressPool` wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address (inclusive).
    pub end: Ipv4Addr,
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl Topology {
    /// Resolves addresses against the provider's subnet (see the module docs
    /// for the rule); `None` when the network is the declared one.
    pub fn resolve(&self, actual_subnet: Option<Ipv4Net>) -> Result<Resolved, Diagnostics> {
        resolve(self, actual_subnet, "", None)
    }

    /// Runs every check on a topology built in code (no file positions).
    pub fn validate(&self) -> Diagnostics {
        let mut report = Report::new("", None);
        validate(self, &mut report, self.network.cidr.trunc());
        report.finish()
    }

    /// The topology as a commented file that [`crate::parse`] reads back.
    pub fn to_yaml(&self) -> String {
        emit::to_yaml(self, "hostctl topology")
    }
}

impl Loaded {
    /// Like [`Topology::resolve`], with problems located in the loaded file.
    pub fn resolve(&self, actual_subnet: Option<Ipv4Net>) -> Result<Resolved, Diagnostics> {
        resolve(
            &self.topology,
            actual_subnet,
            &self.file,
            Some(&self.sources),
        )
    }
}

fn resolve(
    t: &Topology,
    actual: Option<Ipv4Net>,
    file: &str,
    sources: Option<&SourceMap>,
) -> Result<Resolved, Diagnostics> {
    let mut report = Report::new(file, sources);
    let declared = t.network.cidr.trunc();
    let subnet = match (t.network.addressing, actual.map(|a| a.trunc())) {
        (Addressing::Provider, Some(actual)) => actual,
        (Addressing::Fixed, Some(actual)) if actual != declared => {
            report.error(
                "network.addressing",
                format!("addressing is fixed to {declared}, but the provider's network is {actual}"),
                "set `addressing: provider` so host numbers follow the provider, or give the VMs the declared network",
            );
            declared
        }
        _ => declared,
    };
    let placed = validate(t, &mut report, subnet);
    let complete = if report.has_errors() {
        None
    } else {
        concrete(t, &placed, subnet)
    };
    let diagnostics = report.finish();
    match complete {
        Some((topology, host_agent)) => Ok(Resolved {
            topology,
            host_agent,
            warnings: diagnostics.0,
        }),
        None if diagnostics.has_errors() => Err(diagnostics),
        None => {
            // Unreachable by construction (an unplaced address is always reported);
            // kept as an error rather than a panic.
            let mut report = Report::new(file, None);
            report.error_at(
                None,
                "",
                "an address could not be resolved",
                "report this as a bug",
            );
            Err(report.finish())
        }
    }
}

/// The resolved document: literal addresses, `addressing: fixed`, the subnet
/// actually used, so it loads back and validates unchanged.
fn concrete(t: &Topology, placed: &Placed, subnet: Ipv4Net) -> Option<(Topology, Ipv4Addr)> {
    let mut out = t.clone();
    out.network.cidr = subnet;
    out.network.addressing = Addressing::Fixed;
    let host_agent = placed.host_agent?;
    out.host_agent.address = Address::Ip(host_agent);
    for (node, ip) in out.nodes.iter_mut().zip(&placed.nodes) {
        node.address = Address::Ip((*ip)?);
    }
    for (cluster, pool) in out.clusters.iter_mut().zip(&placed.pools) {
        let (start, end) = (*pool)?;
        cluster.metallb_pool.start = Address::Ip(start);
        cluster.metallb_pool.end = Address::Ip(end);
    }
    let all_placed =
        placed.nodes.len() == out.nodes.len() && placed.pools.len() == out.clusters.len();
    all_placed.then_some((out, host_agent))
}

impl Resolved {
    /// The resolved topology (every address literal).
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The subnet the addresses were placed in.
    pub fn subnet(&self) -> Ipv4Net {
        self.topology.network.cidr
    }

    /// The address of node `name`.
    pub fn node_ip(&self, name: &str) -> Option<Ipv4Addr> {
        self.topology.node(name).and_then(|n| n.address.ip())
    }

    /// Every node's name and address, in file order.
    pub fn node_ips(&self) -> impl Iterator<Item = (&str, Ipv4Addr)> {
        self.topology
            .nodes
            .iter()
            .filter_map(|n| n.address.ip().map(|ip| (n.name.as_str(), ip)))
    }

    /// The MetalLB pool of cluster `name`.
    pub fn pool(&self, cluster: &str) -> Option<IpRange> {
        let pool = self.topology.cluster(cluster)?.metallb_pool;
        Some(IpRange {
            start: pool.start.ip()?,
            end: pool.end.ip()?,
        })
    }

    /// The address nodes dial to reach the host agent.
    pub fn host_agent_address(&self) -> Ipv4Addr {
        self.host_agent
    }

    /// The host agent's port.
    pub fn host_agent_port(&self) -> u16 {
        self.topology.host_agent.port
    }

    /// `address:port` as nodes dial it (what goes into their user-data).
    pub fn host_agent_endpoint(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.host_agent, self.host_agent_port())
    }

    /// Where the host agent binds on the host: `hostAgent.listen`, else the
    /// address nodes dial.
    pub fn host_agent_listen(&self) -> SocketAddr {
        let ip = self
            .topology
            .host_agent
            .listen
            .unwrap_or(std::net::IpAddr::V4(self.host_agent));
        SocketAddr::new(ip, self.host_agent_port())
    }

    /// Whether the topology leaves `hostAgent.listen` to its default.
    pub fn host_agent_listen_is_default(&self) -> bool {
        self.topology.host_agent.listen.is_none()
    }

    /// Warnings that remain after resolution.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The resolved topology as a file (`hostctl render` writes it as topology.yaml).
    pub fn to_yaml(&self) -> String {
        emit::to_yaml(
            &self.topology,
            "hostctl resolved topology: every address as provisioned.\n\
             Generated by `hostctl render`; it is a valid topology (addressing: fixed).",
        )
    }
}

/// Serializes as the resolved topology document.
impl Serialize for Resolved {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.topology.serialize(s)
    }
}
