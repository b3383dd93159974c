//! `$HOSTCTL_HOME/local/state.json`: what the local provider created, so that
//! a later `hostctl` process (status, down) can find and remove it. Liveness
//! is never stored; it is checked against the system on every read.

use crate::state_file::StateDocument;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalState {
    /// Set once the bridge exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRecord>,
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeRecord>,
}

/// The bridge and the addressing it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRecord {
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub host_address: Ipv4Addr,
}

/// One node's namespace, link, directory and supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    pub netns: String,
    /// The host end of the veth pair (take it down to cut the node off).
    pub host_veth: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// The node's root directory (its `/`).
    pub root: PathBuf,
    /// The supervisor's pid when it was last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_pid: Option<i32>,
}

impl StateDocument for LocalState {
    const MODE: u32 = 0o600;
    const IF_DAMAGED: &'static str =
        "remove it only after removing its namespaces and bridge by hand";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_empty_and_save_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("local/state.json");
        assert_eq!(LocalState::load(&path).unwrap(), LocalState::default());
        let mut state = LocalState {
            network: Some(NetworkRecord {
                bridge: "hc000000".into(),
                subnet: "10.251.9.0/24".parse().unwrap(),
                host_address: "10.251.9.1".parse().unwrap(),
            }),
            ..LocalState::default()
        };
        state.nodes.insert(
            "n1".into(),
            NodeRecord {
                netns: "hc000000-n1".into(),
                host_veth: "hc000000v14".into(),
                address: "10.251.9.20".parse().unwrap(),
                prefix_len: 24,
                gateway: "10.251.9.1".parse().unwrap(),
                root: "/tmp/x".into(),
                supervisor_pid: Some(42),
            },
        );
        state.save(&path).unwrap();
        assert_eq!(LocalState::load(&path).unwrap(), state);
    }

    #[test]
    fn damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = LocalState::load(&path).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
