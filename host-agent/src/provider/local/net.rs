//! The local provider's part of the node network: per node a network
//! namespace joined to the bridge ([`crate::provider::hostnet`]) by a veth
//! pair. Everything goes through the shared `ip` runner, so every failure
//! carries the exact command and its stderr.

use crate::provider::hostnet::{NetError, link_exists};
// Re-exported because `doctor` still names the runner by this path.
pub use crate::provider::hostnet::Ip;
use std::net::Ipv4Addr;
use std::path::Path;

/// Where iproute2 keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// One node's wiring, as recorded in the provider state.
#[derive(Debug, Clone)]
pub struct NodeLink<'a> {
    pub netns: &'a str,
    pub host_veth: &'a str,
    pub bridge: &'a str,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
}

/// Network namespaces that exist now, by name.
pub async fn netns_list(ip: &Ip) -> Result<Vec<String>, NetError> {
    let out = ip.run(&["netns", "list"]).await?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Whether `netns` exists: `ip netns add` makes `/run/netns/<name>`
/// (what `ip netns list` reads), so no process is spawned — `status`
/// asked once per node, and those spawns were most of its time.
pub fn netns_exists(netns: &str) -> bool {
    Path::new(NETNS_DIR).join(netns).exists()
}

/// Creates the namespace and its veth pair, addresses `eth0`, brings
/// `lo` and `eth0` up and routes everything via the host. Leftovers of
/// an earlier, interrupted attempt are removed first.
pub async fn create_node(ip: &Ip, link: &NodeLink<'_>) -> Result<(), NetError> {
    remove_node(ip, link.netns, link.host_veth).await?;
    let ns = link.netns;
    ip.run(&["netns", "add", ns]).await?;
    ip.run(&[
        "link",
        "add",
        link.host_veth,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ns,
    ])
    .await?;
    ip.run(&["link", "set", link.host_veth, "master", link.bridge])
        .await?;
    ip.run(&["link", "set", link.host_veth, "up"]).await?;
    let cidr = format!("{}/{}", link.address, link.prefix_len);
    ip.run(&["-n", ns, "addr", "add", &cidr, "dev", "eth0"])
        .await?;
    ip.run(&["-n", ns, "link", "set", "lo", "up"]).await?;
    ip.run(&["-n", ns, "link", "set", "eth0", "up"]).await?;
    let gateway = link.gateway.to_string();
    ip.run(&["-n", ns, "route", "replace", "default", "via", &gateway])
        .await?;
    Ok(())
}

/// Removes the veth pair and the namespace; absent ones are skipped.
pub async fn remove_node(ip: &Ip, netns: &str, host_veth: &str) -> Result<(), NetError> {
    if link_exists(host_veth) {
        ip.run(&["link", "del", host_veth]).await?;
    }
    if netns_exists(netns) {
        ip.run(&["netns", "del", netns]).await?;
    }
    Ok(())
}

/// Process ids still running inside a namespace.
pub async fn netns_pids(ip: &Ip, netns: &str) -> Result<Vec<i32>, NetError> {
    let out = ip.run(&["netns", "pids", netns]).await?;
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}
