//! DHCP leases on addresses the topology pins. On a Mac, Multipass's VMs get
//! their default-NIC address from macOS's own DHCP server (bootpd on
//! `bridge100`), which leases the whole vmnet subnet from .2 upward
//! (k8s-bootstrap.md §4.4). hostctl gives every node a second, static
//! address on that NIC (docs/multipass-networking.md), and MetalLB answers
//! for its pools on the same subnet: a lease on one of those addresses means
//! two machines answer ARP for it, and a cluster breaks later and
//! obscurely. `doctor` and `up` read the lease file and refuse first.
//!
//! The file is bootpd's `/var/db/dhcpd_leases` (`HOSTCTL_DHCP_LEASES`
//! overrides the path; the Multipass emulator in tests writes the same
//! format). Its entries look like:
//!
//! ```text
//! {
//!         name=mgmt-cp
//!         ip_address=192.168.252.3
//!         hw_address=1,52:54:0:c5:2b:e1
//!         identifier=1,52:54:0:c5:2b:e1
//!         lease=0x6571e2a4
//! }
//! ```
//!
//! where `lease` is the expiry in seconds since the epoch, in hex.

use super::Check;
use crate::provider::ProviderKind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use topology::Resolved;

/// Where macOS's bootpd keeps its leases.
pub const MACOS_LEASES: &str = "/var/db/dhcpd_leases";

/// One lease from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The host name the client sent (a Multipass VM sends its own name).
    pub name: Option<String>,
    pub address: Ipv4Addr,
    pub hw_address: Option<String>,
    /// Expiry, seconds since the epoch.
    pub expires: Option<u64>,
}

/// An address the topology pins, found leased to a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// What the topology uses the address for: `node mgmt-cp` or
    /// `app1's MetalLB pool 192.168.252.210-192.168.252.219`.
    pub owner: String,
    pub lease: Lease,
}

impl std::fmt::Display for Collision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let holder = match (&self.lease.name, &self.lease.hw_address) {
            (Some(n), Some(hw)) => format!("{n} ({hw})"),
            (Some(n), None) => n.clone(),
            (None, Some(hw)) => hw.clone(),
            (None, None) => "an unnamed machine".to_owned(),
        };
        write!(
            f,
            "{} is {}'s address but is leased by DHCP to {holder}",
            self.lease.address, self.owner
        )
    }
}

/// The advice that goes with any collision.
pub const FIX: &str = "stop or delete that machine and remove its entry from the lease file (sudo), or move the node / pool to host numbers the DHCP server has not reached (it leases from .2 upward)";

/// The refusal `up` gives.
#[derive(Debug, thiserror::Error)]
#[error("DHCP leases collide with the topology (from {}):\n  {}\nfix: {FIX}", path.display(), lines.join("\n  "))]
pub struct CollisionError {
    pub path: PathBuf,
    pub lines: Vec<String>,
}

/// The lease file in use: `$HOSTCTL_DHCP_LEASES`, else bootpd's.
pub fn leases_path() -> PathBuf {
    crate::environment::DHCP_LEASES
        .os()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(MACOS_LEASES))
}

/// Parses bootpd's lease file; entries without a usable address are skipped
/// (the file is the system's, not ours: a field we do not know is no error).
pub fn parse(text: &str) -> Vec<Lease> {
    let mut leases = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        match line {
            "{" => fields.clear(),
            "}" => {
                let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v);
                if let Some(address) = get("ip_address").and_then(|a| a.parse().ok()) {
                    leases.push(Lease {
                        name: get("name").cloned(),
                        address,
                        hw_address: get("hw_address").cloned(),
                        expires: get("lease")
                            .and_then(|l| u64::from_str_radix(l.trim_start_matches("0x"), 16).ok()),
                    });
                }
                fields.clear();
            }
            _ => {
                if let Some((k, v)) = line.split_once('=') {
                    fields.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            }
        }
    }
    leases
}

/// Leases still in force at `now` that sit on a node address (unless leased
/// to that very node) or inside a MetalLB pool.
pub fn collisions(resolved: &Resolved, leases: &[Lease], now: u64) -> Vec<Collision> {
    let live = leases.iter().filter(|l| l.expires.is_none_or(|e| e > now));
    let mut found = Vec::new();
    for lease in live {
        for (node, ip) in resolved.node_ips() {
            if ip == lease.address && lease.name.as_deref() != Some(node) {
                found.push(Collision {
                    owner: format!("node {node}"),
                    lease: lease.clone(),
                });
            }
        }
        for cluster in resolved.topology().clusters() {
            if let Some(pool) = resolved.pool(&cluster.name)
                && lease.address >= pool.start
                && lease.address <= pool.end
            {
                found.push(Collision {
                    owner: format!("{}'s MetalLB pool {pool}", cluster.name),
                    lease: lease.clone(),
                });
            }
        }
    }
    found
}

/// Reads the lease file (absent: no leases) and checks it.
fn read_collisions(resolved: &Resolved, path: &Path) -> Result<Vec<Collision>, std::io::Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(collisions(resolved, &parse(&text), now))
}

/// Only Multipass machines are leased addresses on the node network.
fn applies(kind: ProviderKind) -> bool {
    kind == ProviderKind::Multipass
}

/// `doctor`'s check.
pub fn check(resolved: &Resolved, kind: ProviderKind) -> Option<Check> {
    if !applies(kind) {
        return None;
    }
    let path = leases_path();
    Some(match read_collisions(resolved, &path) {
        Ok(found) if found.is_empty() => Check::ok(
            "dhcp-leases",
            format!("no lease in {} holds a topology address", path.display()),
        ),
        Ok(found) => Check::fail(
            "dhcp-leases",
            format!(
                "{}; fix: {FIX}",
                found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        Err(e) => Check::warn(
            "dhcp-leases",
            format!("cannot read {}: {e}", path.display()),
        ),
    })
}

/// `up`'s refusal, before anything is launched. An unreadable file is not
/// a refusal (macOS may protect it): `doctor` reports that as a warning.
pub fn refuse_collisions(resolved: &Resolved, kind: ProviderKind) -> Result<(), CollisionError> {
    if !applies(kind) {
        return Ok(());
    }
    let path = leases_path();
    match read_collisions(resolved, &path) {
        Ok(found) if !found.is_empty() => Err(CollisionError {
            lines: found.iter().map(ToString::to_string).collect(),
            path,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "{\n\tname=mgmt-cp\n\tip_address=192.168.252.3\n\thw_address=1,52:54:0:c5:2b:e1\n\tidentifier=1,52:54:0:c5:2b:e1\n\tlease=0x7fffffff\n}\n{\n\tname=stray\n\tip_address=192.168.252.10\n\thw_address=1,52:54:0:aa:bb:cc\n\tlease=0x7fffffff\n}\n{\n\tname=old\n\tip_address=192.168.252.20\n\tlease=0x10\n}\n{\n\tname=pooled\n\tip_address=192.168.252.205\n\tlease=0x7fffffff\n}\n";

    fn resolved() -> Resolved {
        topology::default_topology()
            .resolve(Some("192.168.252.0/24".parse().unwrap()))
            .unwrap()
    }

    #[test]
    fn bootpd_entries_parse_with_their_expiry() {
        let leases = parse(FILE);
        assert_eq!(leases.len(), 4);
        assert_eq!(leases[0].name.as_deref(), Some("mgmt-cp"));
        assert_eq!(leases[0].address, Ipv4Addr::new(192, 168, 252, 3));
        assert_eq!(leases[0].hw_address.as_deref(), Some("1,52:54:0:c5:2b:e1"));
        assert_eq!(leases[2].expires, Some(16));
        assert!(parse("garbage\n{\nname=x\n}\n").is_empty());
    }

    #[test]
    fn live_leases_on_node_addresses_or_pools_collide_and_expired_ones_do_not() {
        let r = resolved();
        let pool = r.pool("mgmt").expect("mgmt has a pool");
        let mut leases = parse(FILE);
        leases[3].address = pool.start;
        let found = collisions(&r, &leases, 1_000);
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 2, "{text:?}");
        assert!(
            text[0].contains("192.168.252.10 is node mgmt-cp's address"),
            "{text:?}"
        );
        assert!(text[0].contains("stray (1,52:54:0:aa:bb:cc)"), "{text:?}");
        assert!(text[1].contains("mgmt's MetalLB pool"), "{text:?}");
        // The node's own lease on its own address is that machine, not another.
        leases[1].name = Some("mgmt-cp".into());
        assert_eq!(collisions(&r, &leases, 1_000).len(), 1);
    }
}
