//! The node network as the provider uses it against what the topology puts
//! on it. Multipass's DHCP server (bootpd on macOS, dnsmasq on Linux) hands
//! out the subnet's host addresses from .2 up; a fixed node address or a
//! MetalLB pool inside that range can be given to another machine.

use super::Check;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use topology::Resolved;

/// The range a provider's DHCP server leases from; `None` when the
/// provider has no DHCP (the local provider assigns every address).
pub fn dhcp_range(subnet: Ipv4Net) -> (Ipv4Addr, Ipv4Addr) {
    let first = u32::from(subnet.network()) + 2;
    let last = u32::from(subnet.broadcast()).saturating_sub(1);
    (Ipv4Addr::from(first), Ipv4Addr::from(last))
}

fn inside(a: Ipv4Addr, (start, end): (Ipv4Addr, Ipv4Addr)) -> bool {
    a >= start && a <= end
}

fn overlaps(a: (Ipv4Addr, Ipv4Addr), b: (Ipv4Addr, Ipv4Addr)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// Subnet and collisions: `provider_subnet` is what the provider reports
/// (None before any machine exists), `dhcp` whether it leases addresses,
/// `others` addresses held by machines outside the topology.
pub fn checks(
    resolved: &Resolved,
    provider_subnet: Option<Ipv4Net>,
    dhcp: bool,
    others: &[(String, Ipv4Addr)],
) -> Vec<Check> {
    let subnet = resolved.subnet();
    let declared = resolved.topology().network.cidr;
    let mut out = Vec::new();
    out.push(match provider_subnet {
        Some(actual) if actual != declared => Check::warn(
            "subnet",
            format!(
                "the provider uses {actual}, the topology declares {declared}; node addresses follow {subnet}"
            ),
        ),
        Some(actual) => Check::ok("subnet", format!("{actual} (as declared)")),
        None => Check::ok(
            "subnet",
            format!("{subnet} (declared; the provider reports none yet)"),
        ),
    });
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let range = dhcp_range(subnet);
    for (node, ip) in resolved.node_ips() {
        if !subnet.contains(&ip) {
            problems.push(format!("{node} {ip} is outside {subnet}"));
        }
        for (other, held) in others {
            if *held == ip {
                problems.push(format!("{node} {ip} is held by the machine {other}"));
            }
        }
        if dhcp && inside(ip, range) {
            warnings.push(format!("{node} {ip}"));
        }
    }
    for cluster in resolved.topology().clusters() {
        let Some(pool) = resolved.pool(&cluster.name) else {
            continue;
        };
        let pool_range = (pool.start, pool.end);
        for (node, ip) in resolved.node_ips() {
            if inside(ip, pool_range) {
                problems.push(format!(
                    "{node} {ip} is inside {}'s MetalLB pool {}-{}",
                    cluster.name, pool.start, pool.end
                ));
            }
        }
        for (other, held) in others {
            if inside(*held, pool_range) {
                problems.push(format!(
                    "{}'s MetalLB pool {}-{} contains {held}, held by {other}",
                    cluster.name, pool.start, pool.end
                ));
            }
        }
        if dhcp && overlaps(pool_range, range) {
            warnings.push(format!(
                "{}'s MetalLB pool {}-{}",
                cluster.name, pool.start, pool.end
            ));
        }
    }
    out.push(if problems.is_empty() {
        Check::ok("addresses", "node addresses and pools collide with nothing")
    } else {
        Check::fail("addresses", problems.join("; "))
    });
    if dhcp {
        out.push(if warnings.is_empty() {
            Check::ok("dhcp-range", "nothing fixed lies in the DHCP range")
        } else {
            Check::warn(
                "dhcp-range",
                format!(
                    "inside the provider's DHCP range {}-{} (another machine may be leased the same address): {}",
                    range.0,
                    range.1,
                    warnings.join(", ")
                ),
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn resolved() -> Resolved {
        topology::default_topology().resolve(None).unwrap()
    }

    #[test]
    fn a_foreign_machine_on_a_node_address_fails_and_dhcp_overlap_warns() {
        let r = resolved();
        let (node, ip) = r
            .node_ips()
            .next()
            .map(|(n, ip)| (n.to_owned(), ip))
            .unwrap();
        let checks = checks(&r, None, true, &[("stray".into(), ip)]);
        let addresses = checks.iter().find(|c| c.name == "addresses").unwrap();
        assert_eq!(addresses.status, Status::Fail);
        assert!(addresses.message.contains(&node) && addresses.message.contains("stray"));
        let dhcp = checks.iter().find(|c| c.name == "dhcp-range").unwrap();
        assert_eq!(dhcp.status, Status::Warn, "{}", dhcp.message);
        assert!(dhcp.message.contains("MetalLB pool"));
    }

    #[test]
    fn the_local_provider_has_no_dhcp_and_a_clean_topology_passes() {
        let checks = checks(&resolved(), None, false, &[]);
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:?}");
        assert!(!checks.iter().any(|c| c.name == "dhcp-range"));
    }

    #[test]
    fn a_moved_subnet_is_reported() {
        let r = resolved();
        let moved: Ipv4Net = "192.168.252.0/24".parse().unwrap();
        let checks = checks(&r, Some(moved), true, &[]);
        assert_eq!(checks[0].status, Status::Warn);
        assert!(checks[0].message.contains("192.168.252.0/24"));
    }
}
