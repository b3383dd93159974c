//! Names of what the local provider creates on the host. Everything carries a
//! short hash of `$HOSTCTL_HOME`, so two homes (two developers, parallel
//! tests) never collide and `ip link` shows at once what belongs to whom.

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};
use std::net::Ipv4Addr;
use std::path::Path;

/// Linux limits interface names to 15 bytes (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// The names for one `$HOSTCTL_HOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `hc` + 6 hex digits of the home's hash.
    prefix: String,
}

impl Names {
    /// Derives the names from the home directory (canonical when it exists,
    /// so `~/.hostctl` and its absolute spelling agree).
    pub fn for_home(home: &Path) -> Names {
        let canonical = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
        let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
        let hash: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
        Names {
            prefix: format!("hc{hash}"),
        }
    }

    /// The bridge holding the host's address, e.g. `hc1a2b3c`.
    pub fn bridge(&self) -> String {
        self.prefix.clone()
    }

    /// The node's network namespace, e.g. `hc1a2b3c-app1-cp`.
    pub fn netns(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    /// The host end of the node's veth pair: the prefix, `v`, and the host
    /// part of the node's address in hex (unique within the node network,
    /// and short enough for IFNAMSIZ with any prefix length ≥ /8).
    pub fn host_veth(&self, address: Ipv4Addr, network: Ipv4Net) -> String {
        let host_part = u32::from(address) & !u32::from(network.netmask());
        format!("{}v{host_part:x}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_limits_and_differ_per_home() {
        let a = Names::for_home(Path::new("/nonexistent/a"));
        let b = Names::for_home(Path::new("/nonexistent/b"));
        assert_ne!(a, b);
        assert_eq!(a.bridge().len(), 8);
        let net: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        let veth = a.host_veth("10.255.255.254".parse().unwrap(), net);
        assert!(veth.len() <= IFNAME_MAX, "{veth}");
        let net24: Ipv4Net = "10.251.3.0/24".parse().unwrap();
        assert!(
            a.host_veth("10.251.3.20".parse().unwrap(), net24)
                .ends_with("v14")
        );
        assert!(a.netns("app1-cp").starts_with(&a.bridge()));
    }
}
