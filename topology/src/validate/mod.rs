//! Semantic checks on a topology that has the right shape.
//!
//! Every check runs and reports into one [`Report`], so a file with three
//! mistakes yields three diagnostics. Checks are grouped by subject; each one
//! names the field at fault by path and says how to fix it.
//!
//! Address checks run against the *effective* subnet: the declared
//! `network.cidr` when a file is loaded, the provider's real subnet when it is
//! resolved (see [`crate::resolve`]), so the same rules catch both a typo and
//! an address the provider's network cannot hold.

mod cidrs;
mod identity;
mod network;
mod resources;

pub use resources::check_host_capacity;

use crate::model::Topology;
use crate::report::Report;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Runs every check. `subnet` is the subnet addresses are placed in.
/// Returns the placed addresses for the resolver (complete only when no
/// error was reported).
pub(crate) fn validate(t: &Topology, report: &mut Report<'_>, subnet: Ipv4Net) -> Placed {
    identity::check(t, report);
    let placed = network::check(t, report, subnet);
    cidrs::check(t, report, subnet);
    resources::check(t, report);
    placed
}

/// Concrete addresses, index-aligned with the topology's lists (`None` where
/// an address could not be placed).
#[derive(Debug, Clone, Default)]
pub(crate) struct Placed {
    pub host_agent: Option<Ipv4Addr>,
    pub nodes: Vec<Option<Ipv4Addr>>,
    pub pools: Vec<Option<(Ipv4Addr, Ipv4Addr)>>,
}

/// `nodes[3]` style paths, in one place so every check spells them alike.
pub(crate) fn node_path(i: usize, field: &str) -> String {
    format!("nodes[{i}].{field}")
}

/// `clusters[1].podCidr` style paths.
pub(crate) fn cluster_path(i: usize, field: &str) -> String {
    format!("clusters[{i}].{field}")
}

/// True when two networks share at least one address.
pub(crate) fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
