//! Pod and service CIDRs: within a cluster, against the node network, and
//! across clusters (Cilium Cluster Mesh routes pod addresses between clusters,
//! so any shared range makes an address ambiguous).

use super::{cluster_path, overlaps};
use crate::model::Topology;
use crate::report::Report;
use ipnet::Ipv4Net;

/// kube-apiserver refuses a service range with more than 2^20 addresses.
const SERVICE_MIN_PREFIX: u8 = 12;
/// Cilium's cluster-pool IPAM gives each node a /24 of the pod CIDR by default.
const NODE_BLOCK_PREFIX: u8 = 24;

pub(super) fn check(t: &Topology, report: &mut Report<'_>, subnet: Ipv4Net) {
    for (i, c) in t.clusters.iter().enumerate() {
        let pod = cluster_path(i, "podCidr");
        let svc = cluster_path(i, "serviceCidr");
        canonical(report, &pod, c.pod_cidr);
        canonical(report, &svc, c.service_cidr);
        if c.service_cidr.prefix_len() < SERVICE_MIN_PREFIX {
            report.error(
                &svc,
                format!(
                    "{} is larger than kube-apiserver accepts for services (/{SERVICE_MIN_PREFIX})",
                    c.service_cidr
                ),
                format!("use a /{SERVICE_MIN_PREFIX} to /24, e.g. 10.97.0.0/16"),
            );
        }
        node_blocks(t, report, i, &pod);
        if overlaps(c.pod_cidr, c.service_cidr) {
            report.error(
                &svc,
                format!(
                    "service CIDR {} overlaps the pod CIDR {} of the same cluster",
                    c.service_cidr, c.pod_cidr
                ),
                "use disjoint ranges, e.g. podCidr 10.101.0.0/16 and serviceCidr 10.97.0.0/16",
            );
        }
        for (path, net, what) in [(&pod, c.pod_cidr, "pod"), (&svc, c.service_cidr, "service")] {
            if overlaps(net, subnet) {
                report.error(
                    path,
                    format!("{what} CIDR {net} overlaps the node network {subnet}"),
                    "move it out of the node network, e.g. into 10.0.0.0/8",
                );
            }
        }
        across_clusters(t, report, i);
    }
}

fn canonical(report: &mut Report<'_>, path: &str, net: Ipv4Net) {
    if net.addr() != net.network() {
        report.error(
            path,
            format!("{net} has host bits set; the network is {}", net.trunc()),
            format!("write {}", net.trunc()),
        );
    }
}

/// Each node takes a /24 block of the pod CIDR; a CIDR with fewer blocks
/// than the cluster has nodes leaves some nodes without pod addresses.
fn node_blocks(t: &Topology, report: &mut Report<'_>, i: usize, path: &str) {
    let Some(c) = t.clusters.get(i) else { return };
    let nodes = t.nodes_of(&c.name).count() as u64;
    let prefix = c.pod_cidr.prefix_len();
    let blocks = if prefix > NODE_BLOCK_PREFIX {
        0
    } else {
        1u64 << (NODE_BLOCK_PREFIX - prefix)
    };
    if blocks < nodes.max(1) {
        report.error(
            path,
            format!(
                "pod CIDR {} holds {blocks} per-node /{NODE_BLOCK_PREFIX} block(s), but cluster {} has {nodes} node(s)",
                c.pod_cidr, c.name
            ),
            "use a larger pod CIDR, e.g. a /16",
        );
    }
}

/// Reports each overlap once, at the later cluster, naming the earlier one.
fn across_clusters(t: &Topology, report: &mut Report<'_>, i: usize) {
    let Some(c) = t.clusters.get(i) else { return };
    let mine = [
        ("podCidr", "pod", c.pod_cidr),
        ("serviceCidr", "service", c.service_cidr),
    ];
    for (k, other) in t.clusters.iter().enumerate().take(i) {
        let theirs = [("pod", other.pod_cidr), ("service", other.service_cidr)];
        for (field, what, net) in mine {
            for (their_what, their_net) in theirs {
                if overlaps(net, their_net) {
                    report.error(
                        &cluster_path(i, field),
                        format!(
                            "{what} CIDR {net} of cluster {} overlaps the {their_what} CIDR {their_net} of cluster {} (clusters[{k}]); Cluster Mesh needs every cluster's ranges to be distinct",
                            c.name, other.name
                        ),
                        "give each cluster its own ranges, e.g. pods 10.100/16, 10.101/16, … and services 10.96/16, 10.97/16, …",
                    );
                }
            }
        }
    }
}
