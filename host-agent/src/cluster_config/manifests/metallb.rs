//! MetalLB in L2 (ARP) mode with the cluster's pool from the topology
//! (SPEC §6: BGP is impossible on the VM bridge). Shapes follow
//! `metallb.io/v1beta1` (`api/v1beta1/{ipaddresspool,l2advertisement}_types.go`
//! at the pinned release); MetalLB ships no Rust types, so these small
//! structs are the typed model.
//!
//! The pool is split in two: its first address alone, not auto-assigned,
//! reserved for the clustermesh-apiserver (peers are configured with it
//! before the Service exists), and the rest for everything else. A single
//! pool would let the first LoadBalancer Service to appear take that address.

use crate::cluster_config::cluster::ClusterView;
use serde::Serialize;
use std::net::Ipv4Addr;

/// MetalLB's API group/version.
pub const API_VERSION: &str = "metallb.io/v1beta1";
/// The namespace MetalLB's native manifest creates.
pub const NAMESPACE: &str = "metallb-system";

/// Object metadata (name and namespace only).
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub name: String,
    pub namespace: &'static str,
}

/// `IPAddressPool`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddressPool {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Meta,
    pub spec: IpAddressPoolSpec,
}

/// `IPAddressPoolSpec`: ranges as `start-end`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddressPoolSpec {
    pub addresses: Vec<String>,
    pub auto_assign: bool,
}

/// `L2Advertisement`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct L2Advertisement {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Meta,
    pub spec: L2AdvertisementSpec,
}

/// `L2AdvertisementSpec`: which pools are announced over ARP.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    pub ip_address_pools: Vec<String>,
}

/// The pools and the advertisement of one cluster, as serialisable documents.
#[derive(Debug, Clone)]
pub struct MetalLb {
    /// The reserved addresses first (mesh; Vault on mgmt), then the general
    /// pool (if any address is left).
    pub pools: Vec<IpAddressPool>,
    /// Announces every pool above.
    pub advertisement: L2Advertisement,
}

/// Builds the cluster's MetalLB configuration.
pub fn for_cluster(view: &ClusterView<'_>) -> MetalLb {
    let name = view.name();
    let meta = |suffix: &str| Meta {
        name: format!("{name}-{suffix}"),
        namespace: NAMESPACE,
    };
    let pool = |suffix: &str, start: Ipv4Addr, end: Ipv4Addr, auto_assign: bool| IpAddressPool {
        api_version: API_VERSION,
        kind: "IPAddressPool",
        metadata: meta(suffix),
        spec: IpAddressPoolSpec {
            addresses: vec![format!("{start}-{end}")],
            auto_assign,
        },
    };
    let range = view.pool;
    let reserved = view.reserved_addresses();
    let mut pools: Vec<IpAddressPool> = reserved
        .iter()
        .map(|(name, ip)| pool(name, *ip, *ip, false))
        .collect();
    let last = reserved.last().map_or(range.start, |(_, ip)| *ip);
    if let Some(next) = u32::from(last).checked_add(1).map(Ipv4Addr::from)
        && next <= range.end
    {
        pools.push(pool("pool", next, range.end, true));
    }
    let advertisement = L2Advertisement {
        api_version: API_VERSION,
        kind: "L2Advertisement",
        metadata: meta("l2"),
        spec: L2AdvertisementSpec {
            ip_address_pools: pools.iter().map(|p| p.metadata.name.clone()).collect(),
        },
    };
    MetalLb {
        pools,
        advertisement,
    }
}
