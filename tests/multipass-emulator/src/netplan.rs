//! netplan as a fast-mode machine's NIC sees it: which definition applies
//! to `enp0s1` and what it asks for.
//!
//! The rules are netplan's and systemd-networkd's, because hostctl's
//! user-data relies on them:
//!
//! - every `<root>/etc/netplan/*.yaml` is read in lexical file-name order;
//!   definitions with the same id are merged, later files amending earlier
//!   ones (scalars replaced, sequences appended, mappings merged key by
//!   key: netplan-generate(8), "Handling multiple files");
//! - netplan writes one `10-netplan-<id>.network` per ethernet id, and
//!   networkd applies the lexically first file that matches a device, alone.
//!   So of all the ids that match the NIC (`match.macaddress`, `match.driver`
//!   and `match.name` globs; no `match` means the id is the device name), the
//!   first id wins and the others do nothing.
//!
//! Only IPv4 is modelled: `dhcp4`, `addresses`, `routes` and `gateway4`.

use serde_json::{Map, Value};
use std::net::Ipv4Addr;
use std::path::Path;

/// The emulated NIC.
#[derive(Debug, Clone)]
pub struct Nic<'a> {
    pub name: &'a str,
    pub mac: &'a str,
    pub driver: &'a str,
}

/// What the winning definition asks of the NIC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// The netplan id that won, if any matched.
    pub id: Option<String>,
    pub dhcp4: bool,
    pub addresses: Vec<(Ipv4Addr, u8)>,
    pub routes: Vec<Route>,
    /// Things the emulator noticed but does not do, for the output log.
    pub notes: Vec<String>,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `default` or a CIDR.
    pub to: String,
    pub via: Ipv4Addr,
    pub metric: Option<u32>,
}

/// Reads and merges `<root>/etc/netplan/*.yaml`; returns the merged
/// `network.ethernets` and the problems met (an unreadable file is skipped,
/// as `netplan generate` at boot skips what it cannot parse).
pub fn load(root: &Path) -> (Map<String, Value>, Vec<String>) {
    let mut problems = Vec::new();
    let dir = root.join("etc/netplan");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "yaml"));
    files.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    let mut merged = Value::Object(Map::new());
    for path in files {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_saphyr::from_str::<Value>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(Value::Null) => {}
            Ok(doc) => merge(&mut merged, doc),
            Err(e) => problems.push(format!("netplan: skipping {}: {e}", path.display())),
        }
    }
    let ethernets = merged
        .get("network")
        .and_then(|n| n.get("ethernets"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    (ethernets, problems)
}

/// netplan's merge of a later document into an earlier one.
pub fn merge(into: &mut Value, later: Value) {
    match (into, later) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => a.extend(b),
        (slot, v) => *slot = v,
    }
}

/// The definition networkd would apply to `nic`, and what it asks for.
pub fn decide(ethernets: &Map<String, Value>, nic: &Nic<'_>) -> Desired {
    // serde_json's map iterates in key order, which is the order of
    // netplan's generated file names.
    let mut ids: Vec<&String> = ethernets.keys().collect();
    ids.sort();
    let Some(id) = ids.into_iter().find(|id| matches(id, &ethernets[*id], nic)) else {
        return Desired::default();
    };
    desired(id, &ethernets[id], nic)
}

fn matches(id: &str, def: &Value, nic: &Nic<'_>) -> bool {
    let Some(m) = def.get("match") else {
        return id == nic.name;
    };
    let Some(m) = m.as_object() else {
        return false;
    };
    let ok_mac = m
        .get("macaddress")
        .and_then(Value::as_str)
        .is_none_or(|mac| mac.eq_ignore_ascii_case(nic.mac));
    let ok_name = m
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(|g| glob(g, nic.name));
    let ok_driver = match m.get("driver") {
        None => true,
        Some(Value::String(g)) => glob(g, nic.driver),
        // netplan ≥ 0.104 also takes a list of drivers.
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|g| glob(g, nic.driver)),
        Some(_) => false,
    };
    ok_mac && ok_name && ok_driver
}

fn desired(id: &str, def: &Value, nic: &Nic<'_>) -> Desired {
    let mut d = Desired {
        id: Some(id.to_owned()),
        dhcp4: def.get("dhcp4").is_some_and(truthy),
        ..Desired::default()
    };
    for a in def
        .get("addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // `- 10.0.0.5/24` or `- 10.0.0.5/24: {label: …}` (netplan ≥ 0.100).
        let text = match a {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.keys().next().cloned().unwrap_or_default(),
            other => other.to_string(),
        };
        match parse_cidr(&text) {
            Some(cidr) => d.addresses.push(cidr),
            None if text.contains(':') => d
                .notes
                .push(format!("netplan {id}: IPv6 address {text} not emulated")),
            None => d
                .notes
                .push(format!("netplan {id}: unreadable address {text:?} skipped")),
        }
    }
    if let Some(gw) = def
        .get("gateway4")
        .and_then(Value::as_str)
        .and_then(|g| g.parse().ok())
    {
        d.routes.push(Route {
            to: "default".into(),
            via: gw,
            metric: None,
        });
    }
    for r in def
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let to = r.get("to").and_then(Value::as_str).unwrap_or("");
        let via = r
            .get("via")
            .and_then(Value::as_str)
            .and_then(|v| v.parse().ok());
        let to = match to {
            "default" | "0.0.0.0/0" => Some("default".to_owned()),
            t if parse_cidr(t).is_some() => Some(t.to_owned()),
            _ => None,
        };
        match (to, via) {
            (Some(to), Some(via)) => d.routes.push(Route {
                to,
                via,
                metric: r
                    .get("metric")
                    .and_then(Value::as_u64)
                    .and_then(|m| u32::try_from(m).ok()),
            }),
            _ => d
                .notes
                .push(format!("netplan {id}: route {r} not emulated")),
        }
    }
    if let Some(name) = def.get("set-name").and_then(Value::as_str)
        && name != nic.name
    {
        d.notes.push(format!(
            "netplan {id}: set-name {name} not emulated; the NIC stays {}",
            nic.name
        ));
    }
    d
}

/// netplan booleans: YAML's `true`/`false` and the 1.1 words.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "y"),
        _ => false,
    }
}

/// `192.168.252.10/24` (an address without a prefix is refused, as netplan
/// does).
pub fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = text.trim().split_once('/')?;
    let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
    Some((a.parse().ok()?, prefix))
}

/// fnmatch(3) without flags: `*`, `?` and `[…]` (with `!`/`^` negation and
/// ranges), what networkd uses for `Name=` and `Driver=`.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(2).position(|c| *c == ']').map(|i| i + 2) else {
                    return t.first() == Some(&'[') && go(&p[1..], &t[1..]);
                };
                let Some(c) = t.first() else { return false };
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('!') | Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= *c && *c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == *c;
                        i += 1;
                    }
                }
                hit != neg && go(&p[end + 1..], &t[1..])
            }
            Some(ch) => t.first() == Some(ch) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIC: Nic<'static> = Nic {
        name: "enp0s1",
        mac: "52:54:00:ab:cd:ef",
        driver: "virtio_net",
    };

    fn ethernets(docs: &[&str]) -> Map<String, Value> {
        let mut merged = Value::Object(Map::new());
        for d in docs {
            merge(&mut merged, serde_saphyr::from_str(d).unwrap());
        }
        merged["network"]["ethernets"].as_object().unwrap().clone()
    }

    const FALLBACK: &str = "network:\n  version: 2\n  ethernets:\n    enp0s1:\n      match:\n        macaddress: \"52:54:00:ab:cd:ef\"\n      dhcp4: true\n      set-name: enp0s1\n";

    #[test]
    fn the_lexically_first_matching_id_wins_alone() {
        let hostctl = "network:\n  version: 2\n  ethernets:\n    00-hostctl:\n      match: {driver: virtio_net}\n      dhcp4: true\n      dhcp-identifier: mac\n      addresses: [192.168.252.10/24]\n";
        let d = decide(&ethernets(&[FALLBACK, hostctl]), &NIC);
        assert_eq!(d.id.as_deref(), Some("00-hostctl"));
        assert!(d.dhcp4);
        assert_eq!(d.addresses, [(Ipv4Addr::new(192, 168, 252, 10), 24)]);
        // An id after the fallback's loses, whatever it says.
        let late =
            "network:\n  ethernets:\n    zz:\n      match: {name: \"enp*\"}\n      dhcp4: false\n";
        let d = decide(&ethernets(&[FALLBACK, late]), &NIC);
        assert_eq!(d.id.as_deref(), Some("enp0s1"));
        assert!(d.dhcp4);
    }

    #[test]
    fn later_files_amend_the_same_id() {
        let amend = "network:\n  ethernets:\n    enp0s1:\n      dhcp4: false\n      addresses: [10.0.0.2/24]\n";
        let more = "network:\n  ethernets:\n    enp0s1:\n      addresses: [10.0.0.3/24]\n      routes: [{to: default, via: 10.0.0.1, metric: 200}]\n";
        let d = decide(&ethernets(&[FALLBACK, amend, more]), &NIC);
        assert!(!d.dhcp4);
        assert_eq!(d.addresses.len(), 2, "sequences are appended");
        assert_eq!(
            d.routes,
            [Route {
                to: "default".into(),
                via: Ipv4Addr::new(10, 0, 0, 1),
                metric: Some(200)
            }]
        );
    }

    #[test]
    fn matching_by_mac_driver_name_and_id() {
        let wrong_mac = "network:\n  ethernets:\n    a:\n      match: {macaddress: \"52:54:00:00:00:01\"}\n      dhcp4: false\n";
        assert_eq!(decide(&ethernets(&[wrong_mac]), &NIC).id, None);
        let upper = "network:\n  ethernets:\n    a:\n      match: {macaddress: \"52:54:00:AB:CD:EF\", driver: [e1000, \"virtio*\"]}\n";
        assert_eq!(decide(&ethernets(&[upper]), &NIC).id.as_deref(), Some("a"));
        let by_id = "network:\n  ethernets:\n    enp0s2: {dhcp4: true}\n    enp0s1: {dhcp4: yes}\n";
        let d = decide(&ethernets(&[by_id]), &NIC);
        assert_eq!((d.id.as_deref(), d.dhcp4), (Some("enp0s1"), true));
    }

    #[test]
    fn globs_follow_fnmatch() {
        assert!(glob("virtio*", "virtio_net"));
        assert!(glob("enp?s[0-9]", "enp0s1"));
        assert!(!glob("enp?s[!0-9]", "enp0s1"));
        assert!(!glob("e1000", "virtio_net"));
        assert!(glob("*", ""));
    }
}
