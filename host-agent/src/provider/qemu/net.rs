//! Bridge-mode plumbing: one bridge holding the host's address and a tap
//! device per VM enslaved to it. The bridge and the `ip` runner are the
//! shared [`crate::provider::hostnet`], so failures carry the exact command
//! and its stderr. Only interfaces this provider named (`hq<h>…`) are ever
//! created or removed.

use crate::provider::hostnet::{Ip, NetError, link_exists};
use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};
use std::net::Ipv4Addr;
use std::path::Path;

/// Interface names for one `$HOSTCTL_HOME`: `hq` + 6 hex digits of its hash
/// (the local provider's are `hc…`, so the two never collide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNames {
    prefix: String,
}

impl NetNames {
    pub fn for_home(home: &Path) -> NetNames {
        let canonical = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_path_buf());
        let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
        let hash: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
        NetNames {
            prefix: format!("hq{hash}"),
        }
    }

    /// The bridge, e.g. `hq1a2b3c`.
    pub fn bridge(&self) -> String {
        self.prefix.clone()
    }

    /// A VM's tap: the prefix, `t`, and the host part of its address in hex
    /// (unique on the node network; ≤ 15 bytes for any prefix ≥ /8).
    pub fn tap(&self, address: Ipv4Addr, network: Ipv4Net) -> String {
        let host_part = u32::from(address) & !u32::from(network.netmask());
        format!("{}t{host_part:x}", self.prefix)
    }
}

/// Creates (or recreates, after a host reboot) a VM's tap on the bridge.
pub async fn ensure_tap(ip: &Ip, tap: &str, bridge: &str) -> Result<(), NetError> {
    if !link_exists(tap) {
        ip.run(&["tuntap", "add", "dev", tap, "mode", "tap"])
            .await?;
    }
    ip.run(&["link", "set", tap, "master", bridge]).await?;
    ip.run(&["link", "set", tap, "up"]).await?;
    Ok(())
}

/// Removes a tap; one that is already gone is not an error.
pub async fn remove_tap(ip: &Ip, tap: &str) -> Result<(), NetError> {
    if link_exists(tap) {
        ip.run(&["link", "del", tap]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_differ_from_the_local_providers() {
        let names = NetNames::for_home(Path::new("/nonexistent/q"));
        assert!(names.bridge().starts_with("hq"));
        assert_eq!(names.bridge().len(), 8);
        let net: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        let tap = names.tap("10.255.255.254".parse().unwrap(), net);
        assert!(tap.len() <= 15, "{tap}");
        let net24: Ipv4Net = "10.252.3.0/24".parse().unwrap();
        assert!(
            names
                .tap("10.252.3.20".parse().unwrap(), net24)
                .ends_with("t14")
        );
    }
}
