//! Cilium's Helm values for one cluster (`DIR/clusters/<cluster>/cilium-values.yaml`),
//! rendered from the topology for chart [`CILIUM_CHART_VERSION`]:
//!
//! * VXLAN tunnelling (contract C6, ADR-005: native routing is not workable
//!   on the VM bridge);
//! * a unique Cluster Mesh identity: `cluster.name` is the topology name and
//!   `cluster.id` its 1-based position;
//! * cluster-pool IPAM on the cluster's own pod CIDR (distinct per mesh member);
//! * kube-proxy replacement with the API server given explicitly (there is
//!   no kube-proxy to reach the `kubernetes` Service, and `auto` needs Helm
//!   `lookup`, which offline rendering does not have);
//! * Hubble relay and UI, Gateway API (CRDs applied first, see versions);
//! * Cluster Mesh through the clustermesh-apiserver on a MetalLB address,
//!   with the host's shared Cluster Mesh CA (`tls.ca`, base64 PEM) so peers
//!   need no per-cluster TLS material.

use super::cluster::{API_SERVER_PORT, ClusterView};
use super::error::Result;
use super::versions::CILIUM_CHART_VERSION;
use super::yaml;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certs::Identity;
use serde_json::{Value, json};
use topology::Resolved;

/// The clustermesh-apiserver's etcd port, which peers dial.
pub const CLUSTERMESH_PORT: u16 = 2379;
/// Per-node pod block carved from the pod CIDR (Cilium's default, made
/// explicit because the topology checks one /24 per node fits).
pub const POD_CIDR_MASK_SIZE: u8 = 24;

/// The values file of `cluster`. With `mesh_ca` (the PKI's
/// `clustermesh_ca()`), `tls.ca` carries it; without (rendering before any
/// PKI exists) `tls.ca` is left out and the header says so, because a
/// made-up CA would be worse than none.
pub fn values(resolved: &Resolved, cluster: &str, mesh_ca: Option<&Identity>) -> Result<String> {
    let view = ClusterView::new(resolved, cluster)?;
    let peers = ClusterView::all(resolved)?
        .into_iter()
        .filter(|peer| peer.name() != view.name())
        .map(|peer| {
            json!({
                "name": peer.name(),
                "port": CLUSTERMESH_PORT,
                "ips": [peer.mesh_address().to_string()],
            })
        })
        .collect::<Vec<_>>();
    let mut values = json!({
        "cluster": {"name": view.name(), "id": view.id},
        "kubeProxyReplacement": true,
        "k8sServiceHost": view.control_plane_ip.to_string(),
        "k8sServicePort": API_SERVER_PORT,
        "routingMode": "tunnel",
        "tunnelProtocol": "vxlan",
        "ipam": {
            "mode": "cluster-pool",
            "operator": {
                "clusterPoolIPv4PodCIDRList": [view.cluster.pod_cidr.to_string()],
                "clusterPoolIPv4MaskSize": POD_CIDR_MASK_SIZE,
            },
        },
        "gatewayAPI": {"enabled": true},
        "l7Proxy": true,
        "enableLBIPAM": false,
        "hubble": {"enabled": true, "relay": {"enabled": true}, "ui": {"enabled": true}},
        "clustermesh": {
            "useAPIServer": true,
            "apiserver": {
                "service": {
                    "type": "LoadBalancer",
                    "annotations": {"metallb.io/loadBalancerIPs": view.mesh_address().to_string()},
                },
                "tls": {"authMode": "cluster", "auto": {"enabled": true, "method": "helm"}},
            },
            "config": {"enabled": true, "clusters": peers},
        },
    });
    let mut header = format!(
        "Helm values for cilium {CILIUM_CHART_VERSION} on cluster {} (Cluster Mesh id {}),\n\
         rendered by hostctl from the topology. Apply the Gateway API CRDs first.",
        view.name(),
        view.id
    );
    match mesh_ca {
        Some(ca) => {
            values["tls"] = json!({"ca": {
                "cert": STANDARD.encode(&ca.cert_pem),
                "key": STANDARD.encode(ca.key_pem.expose()),
            }});
            header.push_str("\nContains the Cluster Mesh CA private key: keep this file private.");
        }
        None => header.push_str(
            "\ntls.ca (the shared Cluster Mesh CA) is omitted: no PKI exists yet.\n\
             `hostctl up` renders it from pki/clustermesh.",
        ),
    }
    Ok(yaml::file(
        &header,
        &[yaml::document::<Value>("cilium values", &values)?],
    ))
}
