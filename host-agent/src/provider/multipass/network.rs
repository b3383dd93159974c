//! Addresses on Multipass machines: which subnet the default NIC really uses,
//! and which of a machine's addresses lies on a given network. The stable MAC
//! of the optional extra NIC is [`MacAddr`], shared with the other providers.
//!
//! Multipass does not let us choose the default NIC's address: on macOS it is
//! leased by the system's bootpd on vmnet-shared, and the subnet depends on
//! the release (192.168.64.0/24 up to 1.16.1, forced to 192.168.252.0/24 from
//! 1.16.2, per-zone subnets out of 192.168.252.0/16 on the 1.17 branch —
//! k8s-bootstrap.md §0.1, §4.4). So the subnet is read back from the machines
//! rather than assumed, and a machine's address is picked by subnet, never by
//! its position in `ipv4` (which lists every NIC's addresses, §4.2).

pub use crate::provider::hostnet::MacAddr;
use crate::provider::{VmInfo, VmState};
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The prefix length vmnet-shared hands out (`subnet-mask=255.255.255.0`).
pub const DEFAULT_NIC_PREFIX: u8 = 24;

/// The subnet most machines' default NIC is on, as a /24; `None` when no
/// machine has an address yet (the caller then uses the topology's declared
/// network until the first machine is up).
///
/// A machine's first `ipv4` entry is taken as its default NIC: Multipass
/// lists the management address first, and later entries come from extra
/// NICs, Cilium or container bridges. Stopped machines are skipped (they may
/// report stale addresses), and a majority vote over the rest keeps one odd
/// machine from moving the whole node network.
pub fn default_subnet<'a>(machines: impl IntoIterator<Item = &'a VmInfo>) -> Option<Ipv4Net> {
    let mut votes: BTreeMap<Ipv4Net, usize> = BTreeMap::new();
    for vm in machines {
        if matches!(vm.state, VmState::Stopped | VmState::Deleted) {
            continue;
        }
        if let Some(first) = vm.addresses.iter().find(|a| usable(a)) {
            let net = Ipv4Net::new(*first, DEFAULT_NIC_PREFIX).ok()?.trunc();
            *votes.entry(net).or_default() += 1;
        }
    }
    // Highest count wins; on a tie the lowest network, so the answer is stable.
    votes
        .into_iter()
        .fold(
            None,
            |best: Option<(Ipv4Net, usize)>, (net, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((net, n)),
            },
        )
        .map(|(net, _)| net)
}

/// The subnet Multipass gives its first machine on a Mac, from the daemon's
/// release (`multipassd  1.16.3+mac`): 1.16.2 and later force vmnet-shared
/// to 192.168.252.0/24 (k8s-bootstrap.md §0.1); earlier releases use
/// vmnet's default 192.168.64.0/24. Known before any machine exists, so the
/// first `up` renders user-data with the addresses the machines will really
/// be on. `None` off macOS (Linux Multipass picks a 10.x bridge at install;
/// the machines report it once they exist).
pub fn subnet_for_release(version: &str) -> Option<Ipv4Net> {
    let (number, platform) = version.split_once('+')?;
    if !platform.starts_with("mac") {
        return None;
    }
    let parts: Vec<u32> = number
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let release = (
        *parts.first()?,
        parts.get(1).copied().unwrap_or(0),
        parts.get(2).copied().unwrap_or(0),
    );
    let subnet = if release >= (1, 16, 2) {
        "192.168.252.0/24"
    } else {
        "192.168.64.0/24"
    };
    subnet.parse().ok()
}

/// The machine's address on `subnet`, if it has one. This is how a node's
/// address is resolved: by the network it must be on, not by NIC order.
pub fn address_on(vm: &VmInfo, subnet: &Ipv4Net) -> Option<Ipv4Addr> {
    vm.addresses.iter().copied().find(|a| subnet.contains(a))
}

fn usable(addr: &Ipv4Addr) -> bool {
    !(addr.is_unspecified() || addr.is_loopback() || addr.is_link_local())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(name: &str, state: VmState, addrs: &[&str]) -> VmInfo {
        VmInfo {
            name: name.into(),
            state,
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn majority_of_first_addresses_wins_and_stopped_machines_do_not_vote() {
        let machines = [
            vm("a", VmState::Running, &["192.168.252.3", "10.100.0.1"]),
            vm("b", VmState::Running, &["192.168.252.7"]),
            vm("c", VmState::Starting, &["192.168.64.9"]),
            vm("d", VmState::Stopped, &["192.168.64.2"]),
            vm("e", VmState::Stopped, &["192.168.64.3"]),
        ];
        assert_eq!(
            default_subnet(&machines),
            Some("192.168.252.0/24".parse().unwrap())
        );
        assert_eq!(default_subnet(&[] as &[VmInfo]), None);
    }

    #[test]
    fn the_release_decides_the_first_subnet_on_a_mac_only() {
        let net = |s: &str| Some(s.parse::<Ipv4Net>().unwrap());
        assert_eq!(subnet_for_release("1.16.3+mac"), net("192.168.252.0/24"));
        assert_eq!(subnet_for_release("1.16.2+mac"), net("192.168.252.0/24"));
        assert_eq!(subnet_for_release("1.17.0-dev.12+mac"), None);
        assert_eq!(subnet_for_release("1.17.0+mac"), net("192.168.252.0/24"));
        assert_eq!(subnet_for_release("1.16.1+mac"), net("192.168.64.0/24"));
        assert_eq!(subnet_for_release("1.15.0+mac"), net("192.168.64.0/24"));
        assert_eq!(subnet_for_release("1.16.3"), None);
        assert_eq!(subnet_for_release("1.16.3+win"), None);
    }
}
