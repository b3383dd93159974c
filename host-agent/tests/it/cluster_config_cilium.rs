//! Cilium values of the default topology: every value path exists in the
//! pinned chart (own list and the shared 1.19.7 key list), and the values
//! carry contract C6 and a unique mesh identity per cluster.

use crate::cluster_config_support;

use cluster_config_support::{default_resolved, docs, shared_json, value_paths};
use host_agent::cluster_config::cilium;
use host_agent::cluster_config::versions::{CILIUM_CHART_VERSION, CILIUM_VALUE_PATHS};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};

const CLUSTERS: [&str; 3] = ["mgmt", "app1", "app2"];

fn values_of(cluster: &str) -> Value {
    let text = cilium::values(&default_resolved(), cluster, None).expect("renders");
    let mut all = docs(&text);
    assert_eq!(all.len(), 1, "one values document");
    all.remove(0)
}

/// The chart's keys as the shared fixture lists them.
struct ChartKeys {
    top: HashSet<String>,
    nested: HashSet<String>,
    cluster_item: HashSet<String>,
}

impl ChartKeys {
    fn shared() -> Self {
        let json = shared_json("cilium-values-keys.json");
        let strings = |v: &Value| -> HashSet<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        let nested = json["nested"]
            .as_object()
            .expect("nested")
            .values()
            .flat_map(strings)
            .collect();
        ChartKeys {
            top: strings(&json["topLevel"]),
            nested,
            cluster_item: strings(&json["clustermeshClusterItemKeys"]["listForm"]),
        }
    }

    fn has(&self, path: &str) -> bool {
        let top = path.split('.').next().unwrap_or_default();
        self.top.contains(top) && (!path.contains('.') || self.nested.contains(path))
    }
}

#[test]
fn the_pinned_chart_is_the_one_the_key_list_describes() {
    let json = shared_json("cilium-values-keys.json");
    let described = json["_meta"]["chartVersion"].as_str().unwrap_or_default();
    assert!(
        described.contains(CILIUM_CHART_VERSION),
        "{described} vs {CILIUM_CHART_VERSION}"
    );
}

#[test]
fn our_value_path_list_exists_in_the_pinned_chart() {
    let keys = ChartKeys::shared();
    let missing: Vec<_> = CILIUM_VALUE_PATHS.iter().filter(|p| !keys.has(p)).collect();
    assert!(
        missing.is_empty(),
        "not in cilium {CILIUM_CHART_VERSION}: {missing:?}"
    );
}

#[test]
fn every_rendered_value_path_is_listed_and_exists_in_the_chart() {
    let keys = ChartKeys::shared();
    let ours: BTreeSet<&str> = CILIUM_VALUE_PATHS.iter().copied().collect();
    for cluster in CLUSTERS {
        let values = values_of(cluster);
        for path in value_paths(&values) {
            assert!(
                ours.contains(path.as_str()),
                "{cluster}: {path} not in versions::CILIUM_VALUE_PATHS"
            );
            assert!(
                keys.has(&path),
                "{cluster}: {path} not a cilium {CILIUM_CHART_VERSION} value"
            );
        }
        for peer in values["clustermesh"]["config"]["clusters"]
            .as_array()
            .unwrap()
        {
            for key in peer.as_object().unwrap().keys() {
                assert!(
                    keys.cluster_item.contains(key),
                    "{cluster}: clusters[].{key}"
                );
            }
        }
    }
}

#[test]
fn the_path_checker_refuses_an_unknown_key() {
    let keys = ChartKeys::shared();
    assert!(keys.has("hubble.relay.enabled"));
    assert!(!keys.has("hubble.relay.enable"));
    assert!(!keys.has("tunnel"), "the pre-1.14 key is gone");
}

#[test]
fn contract_c6_vxlan_tunnelling_in_every_cluster() {
    for cluster in CLUSTERS {
        let v = values_of(cluster);
        assert_eq!(v["routingMode"], "tunnel", "{cluster}");
        assert_eq!(v["tunnelProtocol"], "vxlan", "{cluster}");
        assert!(
            v.get("autoDirectNodeRoutes").is_none() && v.get("ipv4NativeRoutingCIDR").is_none()
        );
    }
}

#[test]
fn cluster_names_and_ids_are_unique_and_in_range() {
    let identities: Vec<(Value, Value)> = CLUSTERS
        .iter()
        .map(|c| {
            let v = values_of(c);
            (v["cluster"]["name"].clone(), v["cluster"]["id"].clone())
        })
        .collect();
    assert_eq!(
        identities,
        [
            (json!("mgmt"), json!(1)),
            (json!("app1"), json!(2)),
            (json!("app2"), json!(3))
        ]
    );
}

#[test]
fn ipam_uses_each_clusters_pod_cidr_and_kpr_names_the_api_server() {
    for (cluster, pod, api) in [
        ("mgmt", "10.100.0.0/16", "192.168.64.10"),
        ("app1", "10.101.0.0/16", "192.168.64.20"),
        ("app2", "10.102.0.0/16", "192.168.64.30"),
    ] {
        let v = values_of(cluster);
        assert_eq!(v["ipam"]["mode"], "cluster-pool");
        assert_eq!(
            v["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"],
            json!([pod])
        );
        assert_eq!(v["kubeProxyReplacement"], true);
        assert_eq!(v["k8sServiceHost"], api);
        assert_eq!(v["k8sServicePort"], 6443);
        assert_eq!(v["hubble"]["relay"]["enabled"], true);
        assert_eq!(v["hubble"]["ui"]["enabled"], true);
        assert_eq!(v["gatewayAPI"]["enabled"], true);
    }
}

#[test]
fn each_cluster_meshes_with_every_other_at_its_reserved_address() {
    let mesh_ip = |c: &str| match c {
        "mgmt" => "192.168.64.200",
        "app1" => "192.168.64.211",
        _ => "192.168.64.221",
    };
    for cluster in CLUSTERS {
        let v = values_of(cluster);
        let mesh = &v["clustermesh"];
        assert_eq!(mesh["useAPIServer"], true);
        assert_eq!(mesh["config"]["enabled"], true);
        assert_eq!(
            mesh["apiserver"]["service"]["annotations"]["metallb.io/loadBalancerIPs"],
            mesh_ip(cluster)
        );
        let peers: Vec<(String, String)> = mesh["config"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["ips"][0].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = CLUSTERS
            .iter()
            .filter(|c| **c != cluster)
            .map(|c| (c.to_string(), mesh_ip(c).to_owned()))
            .collect();
        assert_eq!(peers, expected, "{cluster}");
    }
}

#[test]
fn without_a_pki_the_mesh_ca_is_left_out_and_said_so() {
    let text = cilium::values(&default_resolved(), "mgmt", None).unwrap();
    assert!(docs(&text)[0].get("tls").is_none());
    assert!(text.contains("tls.ca (the shared Cluster Mesh CA) is omitted"));
}
