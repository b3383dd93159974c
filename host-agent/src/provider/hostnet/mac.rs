//! MACs derived from names, so the same node or bridge gets the same
//! address on every launch and user-data matching a NIC by MAC can be
//! rendered before the machine exists. Used by all three providers.

use std::fmt;

/// A unicast, locally administered MAC address: a node's NIC (Multipass's
/// extra NIC, a QEMU VM's only one) or a provider's bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `52:54:00:xx:xx:xx` derived from the node name, so the same node gets
    /// the same MAC on every launch and the netplan in its user-data (which
    /// matches the NIC by MAC) can be rendered before the machine exists.
    /// `52:54:00` is QEMU's customary prefix; `0x52` has the locally
    /// administered bit set and the multicast bit clear.
    pub fn for_node(name: &str) -> MacAddr {
        let h = fnv1a(name.as_bytes()).to_be_bytes();
        MacAddr([0x52, 0x54, 0x00, h[5], h[6], h[7]])
    }

    /// `02:68:62:xx:xx:xx` ("hb", locally administered, unicast) derived
    /// from a bridge's name: a fixed address for the bridges the local and
    /// QEMU providers create (see `Ip::ensure_bridge`), apart from every
    /// node MAC (`52:54:00`).
    pub fn for_bridge(name: &str) -> MacAddr {
        let h = fnv1a(name.as_bytes()).to_be_bytes();
        MacAddr([0x02, 0x68, 0x62, h[5], h[6], h[7]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// FNV-1a (64-bit): tiny, stable across releases and platforms, and good
/// enough to spread a handful of node names over 24 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_macs_are_stable_unicast_locally_administered_and_apart_from_nodes() {
        let mac = MacAddr::for_bridge("hc2adcf4");
        assert_eq!(mac, MacAddr::for_bridge("hc2adcf4"));
        assert_ne!(mac, MacAddr::for_bridge("hq2adcf4"));
        assert_eq!(mac.0[0] & 0x01, 0, "unicast");
        assert_eq!(mac.0[0] & 0x02, 0x02, "locally administered");
        assert_ne!(mac.0[..3], MacAddr::for_node("hc2adcf4").0[..3]);
    }

    #[test]
    fn mac_is_stable_unicast_and_locally_administered() {
        let a = MacAddr::for_node("mgmt-cp");
        assert_eq!(a, MacAddr::for_node("mgmt-cp"));
        assert_ne!(a, MacAddr::for_node("mgmt-w1"));
        assert_eq!(a.0[0] & 0x01, 0, "unicast");
        assert_eq!(a.0[0] & 0x02, 0x02, "locally administered");
        assert!(a.to_string().starts_with("52:54:00:"));
        assert_eq!(a.to_string().len(), 17);
    }
}
