//! A lost control-plane node (spec §10.3, RTO 1 h): the machine is gone
//! (or broken beyond use) while its workers and the host's copies of its
//! state survive. The recovery recreates the machine with the same name,
//! address and PKI (the host owns all three), puts the cluster's newest
//! etcd snapshot in place as etcd's data **before** `kubeadm init` starts
//! the control plane (kubeadm's documented route: a restored
//! `/var/lib/etcd`, with its `DirAvailable--var-lib-etcd` preflight check
//! waived for that data), then lets `up`'s graph finish the cluster. The
//! workers are not rejoined: their kubelet certificates are signed by the
//! same cluster CA and the restored etcd still lists them, so they keep
//! them.
//!
//! This module holds what needs no machine: the steps and the seed the
//! node agent restores with; `commands::recover::node` runs the steps.

use crate::cluster_config::kubeadm::{ETCD_DATA_DIR, ETCD_IMAGE, ETCD_PEER_PORT};
use proto::v1::EtcdSeed;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The record's scenario name (`recover/<cluster>-node.json`).
pub const SCENARIO: &str = "node";
/// The spec's recovery-time objective for a lost control-plane node.
pub const RTO: Duration = Duration::from_secs(60 * 60);

/// The steps, in order: the record's id and the printed title.
pub const STEPS: [(&str, &str); 7] = [
    ("choose", "choose the snapshot"),
    ("check", "check it is the cluster's"),
    ("lost", "check the node is lost and remove its remains"),
    (
        "machine",
        "recreate the machine (same name, address and PKI)",
    ),
    ("seed", "restore etcd onto it before kubeadm runs"),
    (
        "control-plane",
        "kubeadm init on the restored data, then the cluster's steps",
    ),
    ("api", "wait for the API server"),
];

/// What the new node's agent restores with: kubeadm's stacked etcd for a
/// member named after the node, peering on the node's address (what the
/// etcd manifest kubeadm is about to write will say).
pub fn seed(node: &str, address: Ipv4Addr) -> EtcdSeed {
    let peer = format!("https://{address}:{ETCD_PEER_PORT}");
    EtcdSeed {
        data_dir: ETCD_DATA_DIR.to_owned(),
        name: node.to_owned(),
        initial_cluster: format!("{node}={peer}"),
        peer_urls: peer,
        image: ETCD_IMAGE.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_kubeadms_stacked_etcd_for_the_node() {
        let s = seed("app1-cp", Ipv4Addr::new(10, 0, 0, 20));
        assert_eq!(s.data_dir, "/var/lib/etcd");
        assert_eq!(s.name, "app1-cp");
        assert_eq!(s.initial_cluster, "app1-cp=https://10.0.0.20:2380");
        assert_eq!(s.peer_urls, "https://10.0.0.20:2380");
        assert!(
            s.image.starts_with("registry.k8s.io/etcd:3.6."),
            "{}",
            s.image
        );
    }
}
