//! The node network and everything placed in it: node addresses, MetalLB
//! pools and the host agent's address.

use super::{Placed, cluster_path, node_path};
use crate::address::{Address, PlaceError};
use crate::model::Topology;
use crate::report::Report;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// The smallest useful node network: a /30 holds two hosts.
const MAX_PREFIX: u8 = 30;

pub(super) fn check(t: &Topology, report: &mut Report<'_>, subnet: Ipv4Net) -> Placed {
    if !declared_network(t, report) || !usable(t, report, subnet) {
        // Every address would fail too; one error about the network is enough.
        return Placed::default();
    }
    let mut placer = Placer { t, report, subnet };
    let placed = Placed {
        host_agent: placer.place("hostAgent.address", "the host agent", t.host_agent.address),
        nodes: t
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                placer.place(
                    &node_path(i, "address"),
                    &format!("node {}", n.name),
                    n.address,
                )
            })
            .collect(),
        pools: t
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let owner = format!("cluster {}'s MetalLB pool", c.name);
                let start = placer.place(
                    &cluster_path(i, "metallbPool.start"),
                    &owner,
                    c.metallb_pool.start,
                );
                let end = placer.place(
                    &cluster_path(i, "metallbPool.end"),
                    &owner,
                    c.metallb_pool.end,
                );
                Some((start?, end?))
            })
            .collect(),
    };
    duplicate_nodes(t, report, &placed);
    pools(t, report, &placed);
    host_agent(t, report, &placed);
    placed
}

/// False when the declared network is too small to place anything in.
fn declared_network(t: &Topology, report: &mut Report<'_>) -> bool {
    let cidr = t.network.cidr;
    if cidr.addr() != cidr.network() {
        report.error(
            "network.cidr",
            format!("{cidr} has host bits set; the network is {}", cidr.trunc()),
            format!("write `cidr: {}`", cidr.trunc()),
        );
    }
    if cidr.prefix_len() > MAX_PREFIX {
        report.error(
            "network.cidr",
            format!("{cidr} is too small to hold nodes"),
            format!("use a network of /{MAX_PREFIX} or larger, e.g. 192.168.64.0/24"),
        );
        return false;
    }
    true
}

/// False when the subnet addresses are placed in (the provider's, at resolve
/// time) is too small; the declared one was checked already.
fn usable(t: &Topology, report: &mut Report<'_>, subnet: Ipv4Net) -> bool {
    if subnet.prefix_len() <= MAX_PREFIX {
        return true;
    }
    report.error(
        "network.cidr",
        format!(
            "the provider's network {subnet} is too small to hold nodes (the topology declares {})",
            t.network.cidr
        ),
        "give the provider a larger network, or use `addressing: fixed` with a network you manage",
    );
    false
}

struct Placer<'t, 'r, 'a> {
    t: &'t Topology,
    report: &'r mut Report<'a>,
    subnet: Ipv4Net,
}

impl Placer<'_, '_, '_> {
    /// Places one address, reporting why it cannot be placed.
    fn place(&mut self, path: &str, owner: &str, address: Address) -> Option<Ipv4Addr> {
        let error = match address.place(self.subnet) {
            Ok(ip) => return Some(ip),
            Err(e) => e,
        };
        let declared = self.t.network.cidr.trunc();
        let (message, fix) = match &error {
            PlaceError::Outside { ip, subnet } if *subnet != declared => (
                format!(
                    "{owner} has the fixed address {ip}, but the provider's network is {subnet} (the topology declares {declared})"
                ),
                match address.host_number_in(declared) {
                    Some(host) => format!(
                        "write the host number `{host}` so the address follows the provider's subnet"
                    ),
                    None => format!("use a host number or an address inside {subnet}"),
                },
            ),
            PlaceError::Outside { subnet, .. } => (
                format!("{owner}: {error}"),
                format!("use a host number (e.g. 10) or an address inside {subnet}"),
            ),
            PlaceError::TooLarge { max, .. } => (
                format!("{owner}: {error}"),
                format!("use a host number between 1 and {max}"),
            ),
            PlaceError::Network { .. } | PlaceError::Broadcast { .. } => (
                format!("{owner}: {error}"),
                "use a host number that is neither the first nor the last of the network"
                    .to_owned(),
            ),
        };
        self.report.error(path, message, fix);
        None
    }
}

fn duplicate_nodes(t: &Topology, report: &mut Report<'_>, placed: &Placed) {
    for (i, ip) in placed.nodes.iter().enumerate() {
        let Some(ip) = ip else { continue };
        let Some(k) = placed
            .nodes
            .iter()
            .take(i)
            .position(|other| *other == Some(*ip))
        else {
            continue;
        };
        let name = t.nodes.get(k).map_or("?", |n| n.name.as_str());
        report.error(
            &node_path(i, "address"),
            format!("{ip} is already used by node {name} (nodes[{k}])"),
            "give each node its own address",
        );
    }
}

/// Where an address in a pool range is already taken.
fn owner_of(t: &Topology, placed: &Placed, start: Ipv4Addr, end: Ipv4Addr) -> Vec<String> {
    let inside = |ip: &Ipv4Addr| start <= *ip && *ip <= end;
    let mut owners: Vec<String> = placed
        .nodes
        .iter()
        .zip(&t.nodes)
        .filter_map(|(ip, n)| {
            ip.filter(inside)
                .map(|ip| format!("node {}'s address {ip}", n.name))
        })
        .collect();
    if let Some(ip) = placed.host_agent.filter(inside) {
        owners.push(format!("the host agent's address {ip}"));
    }
    owners
}

fn pools(t: &Topology, report: &mut Report<'_>, placed: &Placed) {
    for (i, (pool, c)) in placed.pools.iter().zip(&t.clusters).enumerate() {
        let Some((start, end)) = *pool else { continue };
        let path = cluster_path(i, "metallbPool");
        if start > end {
            report.error(
                &path,
                format!(
                    "cluster {}'s MetalLB pool starts at {start}, after its end {end}",
                    c.name
                ),
                "swap start and end",
            );
            continue;
        }
        for taken in owner_of(t, placed, start, end) {
            report.error(
                &path,
                format!(
                    "cluster {}'s MetalLB pool {start}-{end} includes {taken}",
                    c.name
                ),
                "move the pool or the address so MetalLB never hands out an address that is in use",
            );
        }
        let earlier = placed.pools.iter().zip(&t.clusters).take(i);
        for (k, (other, oc)) in earlier.enumerate() {
            // A reversed earlier pool was reported already and covers nothing.
            let Some((os, oe)) = *other else { continue };
            if os <= oe && start <= oe && os <= end {
                report.error(
                    &path,
                    format!(
                        "cluster {}'s MetalLB pool {start}-{end} overlaps cluster {}'s pool {os}-{oe} (clusters[{k}])",
                        c.name, oc.name
                    ),
                    "give each cluster its own range",
                );
            }
        }
    }
}

fn host_agent(t: &Topology, report: &mut Report<'_>, placed: &Placed) {
    if t.host_agent.port == 0 {
        report.error(
            "hostAgent.port",
            "port 0 cannot be dialled",
            "use a fixed port such as 7443",
        );
    }
    let Some(ip) = placed.host_agent else { return };
    if let Some((k, n)) = placed
        .nodes
        .iter()
        .zip(&t.nodes)
        .enumerate()
        .find_map(|(k, (nip, n))| (*nip == Some(ip)).then_some((k, n)))
    {
        report.error(
            "hostAgent.address",
            format!(
                "the host agent's address {ip} is node {}'s address (nodes[{k}])",
                n.name
            ),
            "give the host agent the host's own address on the bridge (host number 1 by default)",
        );
    }
}
