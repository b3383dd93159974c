//! Multipass itself (client and daemon versions, driver) and the machines
//! it already has: those carrying the topology's names (up reuses them),
//! and foreign ones whose addresses matter to the network checks.

use super::Check;
use crate::provider::multipass::{MultipassConfig, MultipassProvider};
use crate::provider::{Provider, VmInfo};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// What the Multipass checks found, for the network checks to use.
pub struct MultipassFindings {
    pub checks: Vec<Check>,
    pub subnet: Option<ipnet::Ipv4Net>,
    /// Addresses held by machines outside the topology.
    pub others: Vec<(String, Ipv4Addr)>,
}

/// Version, driver, and every machine, against the topology's names.
pub async fn multipass(names: &BTreeSet<String>) -> MultipassFindings {
    // Unfiltered on purpose: foreign machines are what may collide.
    let mp = MultipassProvider::new(MultipassConfig::default());
    let mut checks = Vec::new();
    let mut found = MultipassFindings {
        checks: Vec::new(),
        subnet: None,
        others: Vec::new(),
    };
    let version = mp.version().await;
    if let Ok(v) = &version {
        found.subnet = v
            .daemon
            .as_deref()
            .or(v.client.as_deref())
            .and_then(crate::provider::multipass::subnet_for_release);
    }
    match version {
        Ok(v) => match (&v.client, &v.daemon) {
            (Some(c), Some(d)) => {
                checks.push(Check::ok("multipass", format!("client {c}, daemon {d}")))
            }
            (c, None) => {
                checks.push(Check::fail(
                    "multipass",
                    format!(
                        "client {} answers but multipassd does not: start the Multipass daemon",
                        c.as_deref().unwrap_or("?")
                    ),
                ));
                found.checks = checks;
                return found;
            }
            (None, Some(d)) => checks.push(Check::warn(
                "multipass",
                format!("daemon {d}, client version unreadable"),
            )),
        },
        Err(e) => {
            checks.push(Check::fail("multipass", e.to_string()));
            found.checks = checks;
            return found;
        }
    }
    checks.push(match mp.setting("local.driver").await {
        Ok(driver) => Check::ok("driver", driver),
        Err(e) => Check::warn("driver", format!("`multipass get local.driver`: {e}")),
    });
    match mp.list().await {
        Ok(vms) => {
            checks.push(existing(&vms, names));
            // As `up` decides: the machines' own subnet, else the release's.
            found.subnet = crate::provider::multipass::default_subnet(&vms).or(found.subnet);
            found.others = vms
                .iter()
                .filter(|vm| !names.contains(&vm.name))
                .flat_map(|vm| vm.addresses.iter().map(|a| (vm.name.clone(), *a)))
                .collect();
        }
        Err(e) => checks.push(Check::fail("machines", format!("`multipass list`: {e}"))),
    }
    found.checks = checks;
    found
}

/// Machines that already carry the topology's names.
pub fn existing(vms: &[VmInfo], names: &BTreeSet<String>) -> Check {
    let taken: Vec<String> = vms
        .iter()
        .filter(|vm| names.contains(&vm.name))
        .map(|vm| format!("{} ({})", vm.name, vm.state))
        .collect();
    if taken.is_empty() {
        Check::ok("machines", "no machine carries a node's name yet")
    } else {
        Check::warn(
            "machines",
            format!(
                "already exist and will be reused by `up`, not relaunched: {} (`hostctl down` removes them)",
                taken.join(", ")
            ),
        )
    }
}
