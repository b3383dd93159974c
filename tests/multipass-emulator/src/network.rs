//! The emulated network, shaped like vmnet-shared on a Mac with Multipass
//! ≥ 1.16.2: a bridge holding the host's 192.168.252.1/24 (bridge100 on a
//! Mac) and a DHCP server leasing .2–.254 from the bottom up.
//!
//! One emulated network per host: the subnet and the bridge are host-wide,
//! so a state directory that did not create the bridge refuses to use it
//! (and says how to clear a leftover) instead of sharing another test's
//! leases.

use crate::dnsmasq;
use crate::fsutil;
use crate::ip;
use crate::names::fnv1a;
use crate::state::Store;
use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 252, 1);
pub const PREFIX: u8 = 24;
pub const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
pub const SUBNET: &str = "192.168.252.0/24";
pub const RANGE_START: Ipv4Addr = Ipv4Addr::new(192, 168, 252, 2);
pub const RANGE_END: Ipv4Addr = Ipv4Addr::new(192, 168, 252, 254);

/// What `network.json` records: this state directory made this bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub bridge: String,
}

fn record_path(state: &Path) -> PathBuf {
    state.join("network.json")
}

/// The network this state directory created, if any.
pub fn recorded(state: &Path) -> Option<Network> {
    let text = std::fs::read_to_string(record_path(state)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A fixed, locally administered MAC for the bridge (`02:6d:70:…`, "mp").
/// A Linux bridge without one takes the lowest MAC of its ports and so
/// changes address as machines join; a machine that had resolved the host
/// then kept sending to the old MAC (this stalled enrolment in hostctl's
/// local provider; see MacAddr::for_bridge there).
pub fn bridge_mac(bridge: &str) -> String {
    let h = fnv1a(bridge.as_bytes()).to_be_bytes();
    crate::names::format_mac(&[0x02, 0x6d, 0x70, h[5], h[6], h[7]])
}

/// Creates the bridge and starts dnsmasq unless both are there. Takes the
/// global lock, so parallel launches set the network up once.
pub fn ensure(store: &Store, bridge: &str) -> anyhow::Result<Network> {
    let _lock = store.global_lock()?;
    let net = Network {
        bridge: bridge.to_owned(),
    };
    let ours = recorded(&store.dir).as_ref() == Some(&net);
    if ip::link_exists(bridge) && !ours {
        bail!(
            "bridge {bridge} exists but was not created by this emulator state ({}): another \
             test's emulated network, or a leftover; run `multipass-emulator __teardown` with \
             that state, or `ip link del {bridge}`",
            store.dir.display()
        );
    }
    let holders: Vec<String> = ip::links_with_addresses_on(SUBNET)
        .into_iter()
        .filter(|l| l != bridge)
        .collect();
    if !holders.is_empty() {
        bail!(
            "{SUBNET} is already in use on this host (on {holders:?}); the emulated network needs it"
        );
    }
    fsutil::write_atomic(
        &record_path(&store.dir),
        serde_json::to_string(&net)?.as_bytes(),
        0o600,
    )?;
    if !ip::link_exists(bridge) {
        ip::run(&["link", "add", bridge, "type", "bridge"])?;
    }
    ip::run(&["link", "set", bridge, "address", &bridge_mac(bridge)])?;
    ip::run(&[
        "addr",
        "replace",
        &format!("{HOST}/{PREFIX}"),
        "dev",
        bridge,
    ])?;
    ip::run(&["link", "set", bridge, "up"])?;
    dnsmasq::ensure_running(&net, &store.dir).context("starting the DHCP server")?;
    Ok(net)
}

/// Stops dnsmasq and removes the bridge with whatever is still plugged
/// into it; safe to repeat.
pub fn remove(store: &Store) {
    dnsmasq::stop(&store.dir);
    if let Some(net) = recorded(&store.dir) {
        for port in ip::bridge_ports(&net.bridge) {
            ip::run_quiet(&["link", "del", &port]);
        }
        if ip::link_exists(&net.bridge) {
            ip::run_quiet(&["link", "del", &net.bridge]);
        }
    }
    let _ = std::fs::remove_file(record_path(&store.dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_mac_is_fixed_unicast_and_locally_administered() {
        let mac = bridge_mac("mpemu0");
        assert_eq!(mac, bridge_mac("mpemu0"));
        assert_ne!(mac, bridge_mac("mpemu1"));
        assert!(mac.starts_with("02:6d:70:"), "{mac}");
    }
}
