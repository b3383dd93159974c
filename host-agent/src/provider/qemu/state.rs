//! `$HOSTCTL_HOME/qemu/state.json`: every VM the provider created and what is
//! needed to boot it again (a later `hostctl` process — `status`, `start`,
//! `down` — rebuilds QEMU's command line from it). Liveness is never stored:
//! it is checked against the pid file and `/proc` on every read.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::state_file::StateDocument;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QemuState {
    /// Set by `prepare`: how VMs reach the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRecord>,
    #[serde(default)]
    pub nodes: BTreeMap<String, VmRecord>,
}

/// How the VMs are networked (see [`super::NetMode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "mode")]
pub enum NetworkRecord {
    /// A bridge this provider created, holding the host's address.
    Bridge {
        bridge: String,
        subnet: Ipv4Net,
        host_address: Ipv4Addr,
    },
    /// QEMU user-mode networking: no host interfaces at all.
    User {
        subnet: Ipv4Net,
        host_address: Ipv4Addr,
    },
}

/// The boot source a VM was created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootRecord {
    /// The base image the overlay is backed by (must stay where it is).
    pub base: PathBuf,
    /// `raw` or `qcow2`.
    pub base_format: String,
    /// Direct kernel boot, when the image came with a kernel and initrd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd: Option<PathBuf>,
}

/// One VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmRecord {
    /// Holds the overlay, the seed, the console log, sockets and pid file.
    pub dir: PathBuf,
    pub cpus: u32,
    pub memory_mib: u64,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// The tap device on the bridge (bridge mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap: Option<String>,
    /// The host port forwarded to the node agent's port (user mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_port: Option<u16>,
    pub boot: BootRecord,
}

impl StateDocument for QemuState {
    const MODE: u32 = 0o600;
    const IF_DAMAGED: &'static str = "stop the VMs (qemu.pid in each node directory) and remove their taps by hand before removing it";
}

#[cfg(test)]
impl VmRecord {
    /// A bridged VM record, for tests.
    pub fn example() -> VmRecord {
        VmRecord {
            dir: "/h/qemu/n1".into(),
            cpus: 2,
            memory_mib: 1024,
            address: "10.252.1.20".parse().unwrap(),
            prefix_len: 24,
            gateway: "10.252.1.1".parse().unwrap(),
            mac: "52:54:00:01:02:03".into(),
            tap: Some("hq000000t14".into()),
            forwarded_port: None,
            boot: BootRecord {
                base: "/img/rootfs.img".into(),
                base_format: "raw".into(),
                kernel: Some("/img/vmlinuz".into()),
                initrd: Some("/img/initrd.img".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_empty_and_save_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qemu/state.json");
        assert_eq!(QemuState::load(&path).unwrap(), QemuState::default());
        let mut state = QemuState {
            network: Some(NetworkRecord::Bridge {
                bridge: "hq000000".into(),
                subnet: "10.252.1.0/24".parse().unwrap(),
                host_address: "10.252.1.1".parse().unwrap(),
            }),
            ..QemuState::default()
        };
        state.nodes.insert("n1".into(), VmRecord::example());
        state.save(&path).unwrap();
        assert_eq!(QemuState::load(&path).unwrap(), state);
    }

    #[test]
    fn damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = QemuState::load(&path).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
