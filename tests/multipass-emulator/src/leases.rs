//! DHCP leases: dnsmasq's lease file, and its mirror in macOS bootpd's
//! `/var/db/dhcpd_leases` format, which hostctl reads on a Mac
//! (`HOSTCTL_DHCP_LEASES` points it at `<state>/dhcpd_leases` in tests).
//!
//! dnsmasq writes one line per lease: `<expiry> <mac> <ip> <hostname|*>
//! <client-id|*>`. bootpd writes one block per lease:
//!
//! ```text
//! {
//!     name=mgmt-cp
//!     ip_address=192.168.252.3
//!     hw_address=1,52:54:0:ab:cd:ef
//!     identifier=1,52:54:0:ab:cd:ef:0:0:0:1
//!     lease=0x67a1b2c3
//! }
//! ```
//!
//! (the fields indented with one tab), with every octet in hex without leading zeros, the hardware type (1,
//! Ethernet) before the MAC, the client identifier's type byte before its
//! rest, and `lease` the expiry in seconds since the epoch. The newest
//! lease comes first, as bootpd lists them.

use crate::fsutil;
use std::net::Ipv4Addr;
use std::path::Path;

/// One line of dnsmasq's lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEntry {
    pub expires: u64,
    pub mac: String,
    pub address: Ipv4Addr,
    pub hostname: Option<String>,
    /// Colon-separated hex, as dnsmasq writes it.
    pub client_id: Option<String>,
}

/// Parses dnsmasq's lease file; lines it cannot read (IPv6 `duid` lines,
/// damage) are skipped.
pub fn parse_dnsmasq(text: &str) -> Vec<LeaseEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [expires, mac, address, hostname, client_id] = f.as_slice() else {
                return None;
            };
            let star = |s: &str| (s != "*").then(|| s.to_owned());
            Some(LeaseEntry {
                expires: expires.parse().ok()?,
                mac: mac.to_ascii_lowercase(),
                address: address.parse().ok()?,
                hostname: star(hostname),
                client_id: star(client_id),
            })
        })
        .collect()
}

/// `52:54:00:0a:bc:de` → `52:54:0:a:bc:de`, as bootpd writes octets.
pub fn strip_octets(hex: &str) -> String {
    hex.split(':')
        .map(|o| {
            let t = o.trim_start_matches('0');
            if t.is_empty() { "0" } else { t }.to_ascii_lowercase()
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// bootpd's `identifier=`: the type byte, a comma, the rest.
fn identifier(client_id: &str) -> String {
    let stripped = strip_octets(client_id);
    match stripped.split_once(':') {
        Some((kind, rest)) => format!("{kind},{rest}"),
        None => stripped,
    }
}

/// The leases in bootpd's format, newest first.
pub fn render_bootpd(entries: &[LeaseEntry]) -> String {
    let mut sorted: Vec<&LeaseEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| b.expires.cmp(&a.expires).then(b.address.cmp(&a.address)));
    let mut out = String::new();
    for e in sorted {
        out.push_str("{\n");
        if let Some(name) = &e.hostname {
            out.push_str(&format!("\tname={name}\n"));
        }
        out.push_str(&format!("\tip_address={}\n", e.address));
        out.push_str(&format!("\thw_address=1,{}\n", strip_octets(&e.mac)));
        if let Some(id) = &e.client_id {
            out.push_str(&format!("\tidentifier={}\n", identifier(id)));
        }
        out.push_str(&format!("\tlease={:#x}\n", e.expires));
        out.push_str("}\n");
    }
    out
}

/// Where dnsmasq keeps its leases.
pub fn dnsmasq_file(state: &Path) -> std::path::PathBuf {
    state.join("dnsmasq.leases")
}

/// Where the bootpd-format mirror goes.
pub fn mirror_file(state: &Path) -> std::path::PathBuf {
    state.join("dhcpd_leases")
}

/// dnsmasq's current leases (none when it has written no file yet).
pub fn current(state: &Path) -> Vec<LeaseEntry> {
    std::fs::read_to_string(dnsmasq_file(state))
        .map(|t| parse_dnsmasq(&t))
        .unwrap_or_default()
}

/// Rewrites the mirror from dnsmasq's file (0644: hostctl reads it without
/// being root, as anyone can read bootpd's).
pub fn refresh_mirror(state: &Path) -> anyhow::Result<()> {
    let text = render_bootpd(&current(state));
    fsutil::write_atomic(&mirror_file(state), text.as_bytes(), 0o644)
}

/// The newest lease dnsmasq holds for `mac` (VM mode: the guest's own DHCP
/// client picks its identifier, so leases are found by MAC).
pub fn newest_for_mac(state: &Path, mac: &str) -> Option<LeaseEntry> {
    current(state)
        .into_iter()
        .filter(|e| e.mac.eq_ignore_ascii_case(mac))
        .max_by_key(|e| e.expires)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DNSMASQ: &str = "\
1796239563 52:54:00:0a:bb:01 192.168.252.2 mgmt-cp 01:52:54:00:0a:bb:01:00:00:00:01
1796239600 52:54:00:0a:bb:01 192.168.252.3 mgmt-cp 01:52:54:00:0a:bb:01:00:00:00:02
1796239500 52:54:00:cc:dd:ee 192.168.252.4 * *
duid 00:01:00:01:2c:6b:1a:3e:02:68:62:00:00:01
";

    #[test]
    fn dnsmasq_lines_parse_and_ipv6_lines_are_skipped() {
        let leases = parse_dnsmasq(DNSMASQ);
        assert_eq!(leases.len(), 3);
        assert_eq!(leases[0].hostname.as_deref(), Some("mgmt-cp"));
        assert_eq!(leases[2].hostname, None);
        assert_eq!(leases[2].client_id, None);
    }

    #[test]
    fn bootpd_format_strips_leading_zeros_and_lists_newest_first() {
        let text = render_bootpd(&parse_dnsmasq(DNSMASQ));
        let expected_first = "{\n\tname=mgmt-cp\n\tip_address=192.168.252.3\n\
            \thw_address=1,52:54:0:a:bb:1\n\tidentifier=1,52:54:0:a:bb:1:0:0:0:2\n\
            \tlease=0x6b1070f0\n}\n";
        assert!(text.starts_with(expected_first), "{text}");
        assert!(text.contains("\tip_address=192.168.252.2\n"));
        assert!(text.ends_with(
            "{\n\tip_address=192.168.252.4\n\thw_address=1,52:54:0:cc:dd:ee\n\tlease=0x6b10708c\n}\n"
        ));
        assert_eq!(text.matches('{').count(), 3);
    }
}
