//! `list` and `info` output in Multipass 1.16's shape (fixtures
//! `multipass-list.json`, `multipass-info.json`; k8s-bootstrap.md §4.2):
//! keys in alphabetical order as Qt's `QJsonObject` writes them, 4-space
//! indentation, `cpu_count`, disk sizes and `snapshot_count` as strings,
//! `memory` sizes as integers, and a stopped machine with empty strings,
//! objects and lists where a running one has values.

use crate::names::fnv1a;
use crate::state::{Machine, MachineState};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::net::Ipv4Addr;

/// What `list` says for the release of a running or stopped machine, and
/// `info` for a running one (`info` reads the guest's os-release, hence
/// the point release).
pub const LIST_RELEASE: &str = "Ubuntu 24.04 LTS";
pub const INFO_RELEASE: &str = "Ubuntu 24.04.3 LTS";
pub const IMAGE_RELEASE: &str = "24.04 LTS";

/// One machine as the output shows it: the record plus live facts.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub machine: &'a Machine,
    /// Every IPv4 address, the DHCP lease first.
    pub ipv4: Vec<Ipv4Addr>,
    pub disk_used: u64,
    pub memory_used: u64,
    pub load: [f64; 3],
}

fn running(v: &View<'_>) -> bool {
    v.machine.state == MachineState::Running
}

fn addresses(v: &View<'_>) -> Value {
    let list: Vec<String> = if running(v) {
        v.ipv4.iter().map(Ipv4Addr::to_string).collect()
    } else {
        Vec::new()
    };
    json!(list)
}

/// A stable, image-specific stand-in for the image's SHA-256.
fn image_hash(image: &str) -> String {
    (0..4u8)
        .map(|i| format!("{:016x}", fnv1a(format!("{i}{image}").as_bytes())))
        .collect()
}

/// `{"list": [...]}`.
pub fn list_json(views: &[View<'_>]) -> String {
    let list: Vec<Value> = views
        .iter()
        .map(|v| {
            let release = if v.machine.state == MachineState::Deleted {
                "Not Available"
            } else {
                LIST_RELEASE
            };
            let mut o = Map::new();
            o.insert("ipv4".into(), addresses(v));
            o.insert("name".into(), json!(v.machine.name));
            o.insert("release".into(), json!(release));
            o.insert("state".into(), json!(v.machine.state.as_str()));
            Value::Object(o)
        })
        .collect();
    pretty(&json!({ "list": list }))
}

/// `{"errors": [], "info": {"<name>": {...}}}`.
pub fn info_json(views: &[View<'_>]) -> String {
    let mut info = Map::new();
    for v in views {
        let m = v.machine;
        let up = running(v);
        let mut o = Map::new();
        o.insert(
            "cpu_count".into(),
            json!(if up {
                m.cpus.to_string()
            } else {
                String::new()
            }),
        );
        let sda1 = if up {
            json!({"total": m.disk.to_string(), "used": v.disk_used.to_string()})
        } else {
            json!({})
        };
        o.insert("disks".into(), json!({ "sda1": sda1 }));
        o.insert("image_hash".into(), json!(image_hash(&m.image)));
        o.insert("image_release".into(), json!(IMAGE_RELEASE));
        o.insert("ipv4".into(), addresses(v));
        o.insert("load".into(), if up { json!(v.load) } else { json!([]) });
        o.insert(
            "memory".into(),
            if up {
                json!({"total": m.memory, "used": v.memory_used})
            } else {
                json!({})
            },
        );
        o.insert("mounts".into(), json!({}));
        o.insert("release".into(), json!(if up { INFO_RELEASE } else { "" }));
        o.insert("snapshot_count".into(), json!("0"));
        o.insert("state".into(), json!(m.state.as_str()));
        info.insert(m.name.clone(), Value::Object(o));
    }
    let mut top = Map::new();
    top.insert("errors".into(), json!([]));
    top.insert("info".into(), Value::Object(info));
    pretty(&Value::Object(top))
}

/// `list` for people: Multipass's table columns.
pub fn list_table(views: &[View<'_>]) -> String {
    if views.is_empty() {
        return "No instances found.\n".into();
    }
    let mut out = format!("{:<24}{:<18}{:<18}{}\n", "Name", "State", "IPv4", "Image");
    for v in views {
        let ips: Vec<String> = if running(v) {
            v.ipv4.iter().map(Ipv4Addr::to_string).collect()
        } else {
            Vec::new()
        };
        let first = ips.first().cloned().unwrap_or_else(|| "--".into());
        out.push_str(&format!(
            "{:<24}{:<18}{:<18}{}\n",
            v.machine.name,
            v.machine.state.as_str(),
            first,
            LIST_RELEASE
        ));
        for more in ips.iter().skip(1) {
            out.push_str(&format!("{:<42}{more}\n", ""));
        }
    }
    out
}

/// `list --format csv`.
pub fn list_csv(views: &[View<'_>]) -> String {
    let mut out = String::from("Name,State,IPv4,IPv6,Release,AllIPv4\n");
    for v in views {
        let ips: Vec<String> = if running(v) {
            v.ipv4.iter().map(Ipv4Addr::to_string).collect()
        } else {
            Vec::new()
        };
        out.push_str(&format!(
            "{},{},{},,{},\"{}\"\n",
            v.machine.name,
            v.machine.state.as_str(),
            ips.first().cloned().unwrap_or_default(),
            LIST_RELEASE,
            ips.join(",")
        ));
    }
    out
}

/// Qt's indented JSON: 4 spaces, a newline at the end.
pub fn pretty(value: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serializing a Value into memory cannot fail.
    let _ = value.serialize(&mut ser);
    let mut text = String::from_utf8(buf).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    fn machine(name: &str, state: MachineState) -> Machine {
        Machine {
            name: name.into(),
            image: "24.04".into(),
            mode: Mode::Fast,
            cpus: 2,
            memory: 4 << 30,
            disk: 20 << 30,
            mac: "52:54:00:01:02:03".into(),
            state,
            boots: 1,
            netns: "mpemu-x".into(),
            host_link: "mpe0".into(),
            lease: None,
            static_addresses: Vec::new(),
            enabled_units: Vec::new(),
            cloud_init: Default::default(),
            created_unix: 0,
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn running_and_stopped_machines_have_the_fixture_shapes() {
        let up = machine("a", MachineState::Running);
        let down = machine("b", MachineState::Stopped);
        let ips = vec![
            Ipv4Addr::new(192, 168, 252, 2),
            Ipv4Addr::new(192, 168, 252, 10),
        ];
        let views = [
            View {
                machine: &up,
                ipv4: ips.clone(),
                disk_used: 5,
                memory_used: 7,
                load: [0.1, 0.2, 0.3],
            },
            View {
                machine: &down,
                ipv4: ips,
                disk_used: 5,
                memory_used: 7,
                load: [0.0; 3],
            },
        ];
        let text = info_json(&views);
        assert!(text.contains("\n    \"errors\""), "4-space indent:\n{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let a = &v["info"]["a"];
        let mut sorted = keys(a);
        sorted.sort();
        assert_eq!(keys(a), sorted, "alphabetical keys");
        assert_eq!(a["cpu_count"], "2");
        assert_eq!(a["disks"]["sda1"]["total"], (20u64 << 30).to_string());
        assert_eq!(a["memory"]["total"], 4u64 << 30);
        assert_eq!(a["ipv4"], json!(["192.168.252.2", "192.168.252.10"]));
        assert_eq!(a["snapshot_count"], "0");
        let b = &v["info"]["b"];
        assert_eq!(b["cpu_count"], "");
        assert_eq!(b["ipv4"], json!([]));
        assert_eq!(b["memory"], json!({}));
        assert_eq!(b["disks"]["sda1"], json!({}));
        assert_eq!(b["state"], "Stopped");
        let l: Value = serde_json::from_str(&list_json(&views)).unwrap();
        assert_eq!(keys(&l["list"][0]), ["ipv4", "name", "release", "state"]);
        assert_eq!(l["list"][0]["release"], LIST_RELEASE);
        assert_eq!(l["list"][1]["ipv4"], json!([]));
        assert_eq!(image_hash("24.04").len(), 64);
    }
}
