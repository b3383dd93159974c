//! netplan / cloud-init network-config version 2, and the node's stable
//! address expressed in it.
//!
//! Multipass hands out DHCP addresses that drift (canonical/multipass#3792),
//! so every node gets a second NIC with a fixed address that the
//! certificates and kubeadm use. The same document serves two providers:
//! Multipass gets it as a netplan file via `write_files` (it has no way to
//! pass network-config for a `mode=manual` NIC), and the QEMU provider puts it
//! in the NoCloud seed's `network-config`. Both accept the `network:`-wrapped
//! form rendered here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};
use serde::{Serialize, Serializer};

use crate::Error;

/// The netplan id of the stable interface; also names it in `ip addr`
/// output when matched by MAC with `set-name`.
pub const STABLE_INTERFACE_ID: &str = "hostctl0";

/// The netplan id of the default NIC's definition with the node's address
/// beside its lease ([`LeaseNeighbour`]). It starts with digits so that it
/// sorts before every id the image or Multipass gives the same NIC
/// (`enp0s1`, `ens3`, `eth0` from cloud-init's fallback; `default` or
/// `primary` from Multipass's own network-config): systemd-networkd applies
/// only the first `.network` file, in lexical order, that matches a device,
/// and netplan names them `10-netplan-<id>.network`.
pub const DEFAULT_NIC_ID: &str = "00-hostctl";

/// The driver of a Multipass VM's default NIC (`-nic …,model=virtio-net-pci`
/// on Apple Silicon, k8s-bootstrap.md §4.4; also under Apple's
/// Virtualization framework).
pub const DEFAULT_NIC_DRIVER: &str = "virtio_net";

/// Metric of the default route through the stable NIC: above networkd's
/// DHCP default (100), so on Multipass the NAT NIC stays the way out and the
/// stable NIC only carries node-to-node and host-to-node traffic.
pub const STABLE_ROUTE_METRIC: u32 = 200;

/// `{ network: { version: 2, ethernets: … } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetworkConfig {
    network: NetworkV2,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct NetworkV2 {
    version: u8,
    ethernets: BTreeMap<String, Ethernet>,
}

impl NetworkConfig {
    /// A version-2 document with the given ethernets, keyed by netplan id.
    pub fn new(ethernets: impl IntoIterator<Item = (String, Ethernet)>) -> Self {
        Self {
            network: NetworkV2 {
                version: 2,
                ethernets: ethernets.into_iter().collect(),
            },
        }
    }
}

/// One physical interface's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ethernet {
    /// Selects the device; without it the netplan id is the device name.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub matching: Option<InterfaceMatch>,
    /// Renames the matched device, so logs and `ip` output show a stable
    /// name instead of whatever udev picked (`enp0s2`, `ens4`, …).
    #[serde(rename = "set-name", skip_serializing_if = "Option::is_none")]
    pub set_name: Option<InterfaceName>,
    /// Always rendered (netplan's default is off, but saying so makes the
    /// static intent visible in `hostctl render`).
    pub dhcp4: bool,
    /// `mac` makes the DHCP client identify itself by MAC, as Multipass's own
    /// configuration does (macOS's bootpd keys leases on it).
    #[serde(rename = "dhcp-identifier", skip_serializing_if = "Option::is_none")]
    pub dhcp_identifier: Option<DhcpIdentifier>,
    /// Static addresses in CIDR form.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpNet>,
    /// Static routes; a gateway is a `to: 0.0.0.0/0` route (netplan deprecated
    /// `gateway4`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS for the interface; static interfaces get none from DHCP.
    #[serde(skip_serializing_if = "Nameservers::is_empty")]
    pub nameservers: Nameservers,
}

/// How netplan finds the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum InterfaceMatch {
    /// By MAC: what Multipass's `--network …,mac=` pins, so it survives
    /// device renumbering.
    #[serde(rename = "macaddress")]
    MacAddress(MacAddress),
    /// By kernel name, for providers that control the device order.
    #[serde(rename = "name")]
    Name(InterfaceName),
    /// By kernel driver (`virtio_net`), for a NIC whose MAC and name the
    /// provider chooses at launch (Multipass's default NIC).
    #[serde(rename = "driver")]
    Driver(String),
}

/// netplan's `dhcp-identifier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DhcpIdentifier {
    /// The client identifier is the MAC (not systemd's DUID).
    Mac,
}

/// A route; `to: 0.0.0.0/0` is the default route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Destination.
    pub to: RouteTarget,
    /// Next hop; must be on-link.
    pub via: IpAddr,
    /// Lower wins; set so a secondary NIC does not take over the default
    /// route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
}

/// A route destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteTarget {
    /// The default route, rendered `0.0.0.0/0`: netplan also knows
    /// `default`, but cloud-init 22.4 (Debian bookworm) rejects it ("Address
    /// default is not a valid ip network") and drops the whole network setup.
    Default,
    /// A specific prefix.
    Net(IpNet),
}

impl Serialize for RouteTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Default => serializer.serialize_str("0.0.0.0/0"),
            Self::Net(net) => serializer.collect_str(net),
        }
    }
}

/// DNS servers and search domains for a static interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Nameservers {
    /// Resolver addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
    /// Search domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
}

impl Nameservers {
    fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.search.is_empty()
    }
}

/// A MAC address, always rendered lowercase: netplan's `match.macaddress`
/// silently matches nothing when given uppercase letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    /// From raw octets, e.g. a MAC the provider generated.
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }
}

impl FromStr for MacAddress {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidMac(s.to_owned());
        let mut octets = [0u8; 6];
        let mut parts = s.split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 {
                return Err(invalid());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        match parts.next() {
            Some(_) => Err(invalid()),
            None => Ok(Self(octets)),
        }
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A kernel interface name (IFNAMSIZ is 16 including the NUL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct InterfaceName(String);

impl InterfaceName {
    /// Refuses names the kernel would refuse, so netplan does not fail at
    /// boot.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        let ok = (1..=15).contains(&name.len())
            && !name
                .chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(name))
        } else {
            Err(Error::InvalidInterfaceName(name))
        }
    }
}

/// The node's fixed address, as the topology assigns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StableAddress {
    /// Which NIC carries it.
    pub interface: InterfaceMatch,
    /// Address and prefix, e.g. `192.168.64.10/24`.
    pub address: Ipv4Net,
    /// A default route through this NIC (at [`STABLE_ROUTE_METRIC`]), for
    /// providers where it is the only NIC.
    pub gateway: Option<Ipv4Addr>,
    /// Resolvers for the NIC; empty on Multipass, where the DHCP NIC brings
    /// DNS.
    pub nameservers: Vec<IpAddr>,
}

impl StableAddress {
    /// The network-config document that pins the address: static, no DHCP,
    /// renamed to [`STABLE_INTERFACE_ID`] when matched by MAC.
    ///
    /// Refuses a network/broadcast address and an off-subnet gateway, both of
    /// which netplan applies without complaint and which then fail at
    /// runtime, inside the VM, where nobody sees them.
    pub fn network_config(&self) -> Result<NetworkConfig, Error> {
        let net = self.address;
        if net.prefix_len() < 31 && (net.addr() == net.network() || net.addr() == net.broadcast()) {
            return Err(Error::NotAHostAddress { address: net });
        }
        let routes = match self.gateway {
            Some(gateway) if !net.contains(&gateway) => {
                return Err(Error::GatewayOutsideSubnet {
                    gateway,
                    address: net,
                });
            }
            Some(gateway) => vec![Route {
                to: RouteTarget::Default,
                via: IpAddr::V4(gateway),
                metric: Some(STABLE_ROUTE_METRIC),
            }],
            None => Vec::new(),
        };
        let set_name = match self.interface {
            InterfaceMatch::MacAddress(_) => Some(InterfaceName::new(STABLE_INTERFACE_ID)?),
            InterfaceMatch::Name(_) | InterfaceMatch::Driver(_) => None,
        };
        let ethernet = Ethernet {
            matching: Some(self.interface.clone()),
            set_name,
            dhcp4: false,
            dhcp_identifier: None,
            addresses: vec![IpNet::V4(net)],
            routes,
            nameservers: Nameservers {
                addresses: self.nameservers.clone(),
                search: Vec::new(),
            },
        };
        Ok(NetworkConfig::new([(
            STABLE_INTERFACE_ID.to_owned(),
            ethernet,
        )]))
    }
}

/// The node's fixed address as a second, static address on the default
/// NIC, next to the DHCP lease the provider gives it (Multipass:
/// docs/multipass-networking.md). The lease stays the way out (default
/// route, DNS); the fixed address is what the certificates, kubeadm,
/// kubelet and Cilium use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseNeighbour {
    /// Address and the lease's prefix, e.g. `192.168.252.10/24`.
    pub address: Ipv4Net,
}

impl LeaseNeighbour {
    /// The netplan document: the default NIC (matched by driver, id
    /// [`DEFAULT_NIC_ID`] so it wins over the image's own definition) keeps
    /// DHCP and gains the address.
    pub fn network_config(&self) -> Result<NetworkConfig, Error> {
        let net = self.address;
        if net.prefix_len() < 31 && (net.addr() == net.network() || net.addr() == net.broadcast()) {
            return Err(Error::NotAHostAddress { address: net });
        }
        let ethernet = Ethernet {
            matching: Some(InterfaceMatch::Driver(DEFAULT_NIC_DRIVER.to_owned())),
            set_name: None,
            dhcp4: true,
            dhcp_identifier: Some(DhcpIdentifier::Mac),
            addresses: vec![IpNet::V4(net)],
            routes: Vec::new(),
            nameservers: Nameservers::default(),
        };
        Ok(NetworkConfig::new([(DEFAULT_NIC_ID.to_owned(), ethernet)]))
    }
}

/// How a node's user-data pins its address, when it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeAddress {
    /// On a NIC of its own (an extra Multipass NIC matched by MAC).
    Stable(StableAddress),
    /// Beside the default NIC's lease (Multipass's default).
    BesideLease(LeaseNeighbour),
}

impl NodeAddress {
    /// The netplan document for this choice.
    pub fn network_config(&self) -> Result<NetworkConfig, Error> {
        match self {
            NodeAddress::Stable(s) => s.network_config(),
            NodeAddress::BesideLease(l) => l.network_config(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stable(address: &str, gateway: Option<&str>) -> StableAddress {
        StableAddress {
            interface: InterfaceMatch::MacAddress("52:54:00:4B:AB:CD".parse().unwrap()),
            address: address.parse().unwrap(),
            gateway: gateway.map(|g| g.parse().unwrap()),
            nameservers: Vec::new(),
        }
    }

    #[test]
    fn mac_parses_and_renders_lowercase() {
        let mac: MacAddress = "52:54:00:4B:AB:CD".parse().unwrap();
        assert_eq!(mac.to_string(), "52:54:00:4b:ab:cd");
        for bad in [
            "52:54:00:4b:ab",
            "52:54:00:4b:ab:cd:ef",
            "5254.004b.abcd",
            "zz:54:00:4b:ab:cd",
        ] {
            assert!(bad.parse::<MacAddress>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn interface_names_follow_kernel_rules() {
        assert!(InterfaceName::new("enp0s2").is_ok());
        for bad in ["", "a/b", "a b", "sixteen-chars-xx"] {
            assert!(InterfaceName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn refuses_network_address_and_foreign_gateway() {
        assert!(matches!(
            stable("192.168.64.0/24", None).network_config(),
            Err(Error::NotAHostAddress { .. })
        ));
        assert!(matches!(
            stable("192.168.64.10/24", Some("10.0.0.1")).network_config(),
            Err(Error::GatewayOutsideSubnet { .. })
        ));
    }

    #[test]
    fn an_address_beside_the_lease_keeps_dhcp_and_sorts_first() {
        let config = LeaseNeighbour {
            address: "192.168.252.10/24".parse().unwrap(),
        }
        .network_config()
        .unwrap();
        let text = serde_saphyr::to_string(&config).unwrap();
        let eth = &config.network.ethernets[DEFAULT_NIC_ID];
        assert!(eth.dhcp4);
        assert_eq!(eth.dhcp_identifier, Some(DhcpIdentifier::Mac));
        assert!(eth.routes.is_empty() && eth.set_name.is_none());
        assert!(text.contains("driver: virtio_net"), "{text}");
        assert!(text.contains("dhcp-identifier: mac"), "{text}");
        assert!(text.contains("192.168.252.10/24"), "{text}");
        // networkd takes the first matching file: ours must sort before the
        // ids others give the same NIC.
        for other in ["default", "primary", "enp0s1", "ens3", "eth0", "extra0"] {
            assert!(DEFAULT_NIC_ID < other, "{other}");
        }
        assert!(matches!(
            LeaseNeighbour {
                address: "192.168.252.255/24".parse().unwrap()
            }
            .network_config(),
            Err(Error::NotAHostAddress { .. })
        ));
    }

    #[test]
    fn gateway_becomes_low_priority_default_route() {
        let config = stable("192.168.64.10/24", Some("192.168.64.1"))
            .network_config()
            .unwrap();
        let eth = &config.network.ethernets[STABLE_INTERFACE_ID];
        assert!(!eth.dhcp4);
        assert_eq!(eth.routes[0].metric, Some(STABLE_ROUTE_METRIC));
        assert_eq!(eth.routes[0].to, RouteTarget::Default);
    }
}
