//! Node, pool and host-agent addresses, and how they land in a subnet.
//!
//! The spec numbers hosts in 192.168.64.0/24, but Multipass ≥ 1.16.2 on macOS
//! hands out 192.168.252.0/24 and older versions drift (64 → 65 → 66) when
//! other vmnet users start first. What stays stable across all of these is the
//! *host number* (.10 for mgmt-cp, .200–.210 for mgmt's pool), so an address is
//! normally written as that number and placed in whatever subnet the provider
//! really uses. A full IPv4 address is also accepted for users who pin the
//! network themselves; it is taken literally and must lie in the subnet.

use ipnet::Ipv4Net;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::Ipv4Addr;

/// An address as written in the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Address {
    /// A host number, placed in the node network at resolve time (`10` → `x.y.z.10` in a /24).
    Host(u32),
    /// A literal address; it never moves.
    Ip(Ipv4Addr),
}

/// Why an address cannot be placed in a subnet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// Host number 0 / the first address names the network itself.
    #[error("{shown} is the network address of {subnet}")]
    Network {
        /// The address as written.
        shown: String,
        /// The subnet it was placed in.
        subnet: Ipv4Net,
    },
    /// The last address of the subnet is its broadcast address.
    #[error("{shown} is the broadcast address of {subnet}")]
    Broadcast {
        /// The address as written.
        shown: String,
        /// The subnet it was placed in.
        subnet: Ipv4Net,
    },
    /// A host number larger than the subnet.
    #[error("host number {host} does not fit in {subnet} (usable host numbers are 1 to {max})")]
    TooLarge {
        /// The host number as written.
        host: u32,
        /// The subnet it was placed in.
        subnet: Ipv4Net,
        /// The largest usable host number.
        max: u64,
    },
    /// A literal address in another network.
    #[error("{ip} is outside the node network {subnet}")]
    Outside {
        /// The address as written.
        ip: Ipv4Addr,
        /// The subnet it should be in.
        subnet: Ipv4Net,
    },
}

impl Address {
    /// The concrete address in `subnet`, refusing the network and broadcast
    /// addresses (no VM or MetalLB IP can use them).
    pub fn place(self, subnet: Ipv4Net) -> Result<Ipv4Addr, PlaceError> {
        let base = u32::from(subnet.network());
        let size = 1u64 << (32 - u32::from(subnet.prefix_len()));
        let (offset, ip) = match self {
            Address::Host(host) => {
                if u64::from(host) >= size {
                    let max = size.saturating_sub(2);
                    return Err(PlaceError::TooLarge { host, subnet, max });
                }
                (u64::from(host), Ipv4Addr::from(base | host))
            }
            Address::Ip(ip) => {
                if !subnet.contains(&ip) {
                    return Err(PlaceError::Outside { ip, subnet });
                }
                (u64::from(u32::from(ip) - base), ip)
            }
        };
        let shown = self.to_string();
        if offset == 0 {
            Err(PlaceError::Network { shown, subnet })
        } else if offset == size - 1 {
            Err(PlaceError::Broadcast { shown, subnet })
        } else {
            Ok(ip)
        }
    }

    /// The literal address, if this is one.
    pub fn ip(self) -> Option<Ipv4Addr> {
        match self {
            Address::Ip(ip) => Some(ip),
            Address::Host(_) => None,
        }
    }

    /// The host number this address has in `subnet` (for "write 10 instead" fixes).
    pub fn host_number_in(self, subnet: Ipv4Net) -> Option<u32> {
        match self {
            Address::Host(host) => Some(host),
            Address::Ip(ip) => subnet
                .contains(&ip)
                .then(|| u32::from(ip) - u32::from(subnet.network())),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Host(host) => write!(f, "host number {host}"),
            Address::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Address::Host(host) => s.serialize_u32(*host),
            Address::Ip(ip) => s.collect_str(ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn host_numbers_follow_the_subnet() {
        let a = Address::Host(10);
        assert_eq!(
            a.place(net("192.168.64.0/24")),
            Ok(Ipv4Addr::new(192, 168, 64, 10))
        );
        assert_eq!(
            a.place(net("192.168.252.0/24")),
            Ok(Ipv4Addr::new(192, 168, 252, 10))
        );
        assert_eq!(
            Address::Host(300).place(net("10.0.0.0/23")),
            Ok(Ipv4Addr::new(10, 0, 1, 44))
        );
    }

    #[test]
    fn refuses_network_broadcast_and_overflow() {
        let n = net("192.168.64.0/24");
        assert!(matches!(
            Address::Host(0).place(n),
            Err(PlaceError::Network { .. })
        ));
        assert!(matches!(
            Address::Host(255).place(n),
            Err(PlaceError::Broadcast { .. })
        ));
        assert!(matches!(
            Address::Host(256).place(n),
            Err(PlaceError::TooLarge { max: 254, .. })
        ));
        assert!(matches!(
            Address::Host(u32::MAX).place(n),
            Err(PlaceError::TooLarge { .. })
        ));
        assert!(matches!(
            Address::Host(1).place(net("10.0.0.0/32")),
            Err(PlaceError::TooLarge { .. })
        ));
        assert!(matches!(
            Address::Host(0).place(net("0.0.0.0/0")),
            Err(PlaceError::Network { .. })
        ));
    }

    #[test]
    fn literal_addresses_stay_put() {
        let ip = Ipv4Addr::new(192, 168, 64, 10);
        assert_eq!(Address::Ip(ip).place(net("192.168.64.0/24")), Ok(ip));
        assert!(matches!(
            Address::Ip(ip).place(net("192.168.252.0/24")),
            Err(PlaceError::Outside { .. })
        ));
        assert_eq!(
            Address::Ip(ip).host_number_in(net("192.168.64.0/24")),
            Some(10)
        );
    }
}
