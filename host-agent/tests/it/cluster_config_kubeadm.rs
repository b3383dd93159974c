//! kubeadm configs of the default topology: every key exists in its
//! upstream type (own field list, and the shared fixture as a cross-check),
//! and the values carry the topology's decisions.

use crate::cluster_config_support;

use cluster_config_support::{FieldList, default_resolved, doc_of_kind, docs};
use host_agent::cluster_config::K8sError;
use host_agent::cluster_config::kubeadm::{self, PLACEHOLDER_CA_HASH, PLACEHOLDER_TOKEN};
use serde_json::{Value, json};
use topology::{NodeRole, Resolved};

/// Every kubeadm.yaml of the topology: (node, text).
fn all_configs(resolved: &Resolved) -> Vec<(String, String)> {
    resolved
        .topology()
        .nodes()
        .iter()
        .map(|n| {
            let text = match n.role {
                NodeRole::ControlPlane => kubeadm::init_config(resolved, &n.cluster),
                NodeRole::Worker => {
                    kubeadm::join_config(resolved, &n.name, PLACEHOLDER_TOKEN, PLACEHOLDER_CA_HASH)
                }
            };
            (n.name.clone(), text.expect("renders"))
        })
        .collect()
}

fn assert_fields_exist(list: &FieldList, which: &str) {
    let resolved = default_resolved();
    let mut checked = 0;
    for (node, text) in all_configs(&resolved) {
        for doc in docs(&text) {
            let bad = list.violations(&doc);
            assert!(
                bad.is_empty(),
                "{node}: fields missing from the {which} list: {bad:#?}"
            );
            checked += 1;
        }
    }
    // 3 control planes × (Init + Cluster + Kubelet) + 3 workers × Join
    assert_eq!(checked, 12);
}

#[test]
fn every_kubeadm_key_is_in_our_field_list_from_upstream_types() {
    assert_fields_exist(&FieldList::own(), "own");
}

#[test]
fn every_kubeadm_key_is_in_the_shared_v1beta4_field_list() {
    assert_fields_exist(&FieldList::shared(), "shared");
}

#[test]
fn our_field_list_agrees_with_the_shared_one() {
    let (own, shared) = (FieldList::own(), FieldList::shared());
    for (ty, fields) in &own.types {
        let theirs = shared
            .types
            .get(ty)
            .unwrap_or_else(|| panic!("shared list lacks {ty}"));
        let extra: Vec<_> = fields.difference(theirs).collect();
        assert!(
            extra.is_empty(),
            "{ty}: fields in our list but not upstream's: {extra:?}"
        );
    }
}

#[test]
fn the_checker_catches_a_misspelt_or_misplaced_key() {
    let list = FieldList::own();
    let bad = json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
        "apiServer": {"certSans": ["x"], "extraArgs": [{"name": "a", "value": "b", "flag": 1}]},
        "timeoutForControlPlane": "4m0s",
    });
    let found = list.violations(&bad);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.iter().any(|v| v.contains("certSans")));
    assert!(found.iter().any(|v| v.contains("extraArgs[0].flag")));
    assert!(found.iter().any(|v| v.contains("timeoutForControlPlane")));
}

#[test]
fn init_config_carries_the_clusters_addresses_and_cidrs() {
    let resolved = default_resolved();
    for (cluster, cp_ip, pod, svc) in [
        ("mgmt", "192.168.64.10", "10.100.0.0/16", "10.96.0.0/16"),
        ("app1", "192.168.64.20", "10.101.0.0/16", "10.97.0.0/16"),
        ("app2", "192.168.64.30", "10.102.0.0/16", "10.98.0.0/16"),
    ] {
        let text = kubeadm::init_config(&resolved, cluster).unwrap();
        let init = doc_of_kind(&text, "InitConfiguration");
        let cc = doc_of_kind(&text, "ClusterConfiguration");
        assert_eq!(cc["apiVersion"], "kubeadm.k8s.io/v1beta4");
        assert_eq!(cc["clusterName"], cluster);
        assert_eq!(cc["kubernetesVersion"], "v1.35.0");
        assert_eq!(cc["networking"]["podSubnet"], pod);
        assert_eq!(
            cc["networking"]["serviceSubnet"], svc,
            "service CIDR must be explicit"
        );
        assert_eq!(cc["controlPlaneEndpoint"], format!("{cp_ip}:6443"));
        assert_eq!(init["localAPIEndpoint"]["advertiseAddress"], cp_ip);
        let sans = cc["apiServer"]["certSANs"].as_array().unwrap();
        assert!(sans.contains(&json!(cp_ip)), "{cluster}: certSANs {sans:?}");
        assert!(sans.contains(&json!(format!("{cluster}-cp"))));
        assert_eq!(cc["encryptionAlgorithm"], "ECDSA-P256");
        assert_eq!(
            init["nodeRegistration"]["criSocket"],
            "unix:///var/run/containerd/containerd.sock"
        );
        assert_eq!(
            init["nodeRegistration"]["kubeletExtraArgs"],
            json!([{"name": "node-ip", "value": cp_ip}])
        );
        // mgmt's control plane is untainted (`taints: []`, the fit
        // report's default); app clusters keep kubeadm's default taint,
        // which only an absent (nil) field gives.
        match cluster {
            "mgmt" => assert_eq!(init["nodeRegistration"]["taints"], json!([])),
            _ => assert!(
                init["nodeRegistration"].get("taints").is_none(),
                "{cluster}: keep the default CP taint"
            ),
        }
    }
}

#[test]
fn kube_proxy_is_skipped_and_kubelet_uses_systemd() {
    let text = kubeadm::init_config(&default_resolved(), "app1").unwrap();
    let init = doc_of_kind(&text, "InitConfiguration");
    assert_eq!(init["skipPhases"], json!(["addon/kube-proxy"]));
    assert_eq!(
        doc_of_kind(&text, "ClusterConfiguration")["proxy"]["disabled"],
        true
    );
    let kubelet = doc_of_kind(&text, "KubeletConfiguration");
    assert_eq!(kubelet["apiVersion"], "kubelet.config.k8s.io/v1beta1");
    assert_eq!(kubelet["cgroupDriver"], "systemd");
    assert_eq!(
        kubelet["containerRuntimeEndpoint"],
        "unix:///var/run/containerd/containerd.sock"
    );
    assert!(init["timeouts"]["controlPlaneComponentHealthCheck"].is_string());
}

#[test]
fn extra_args_are_in_v1beta4_list_form() {
    let resolved = default_resolved();
    for (node, text) in all_configs(&resolved) {
        for doc in docs(&text) {
            for args in find_key(&doc, &["extraArgs", "kubeletExtraArgs"]) {
                let list = args
                    .as_array()
                    .unwrap_or_else(|| panic!("{node}: {args} is not a list"));
                for arg in list {
                    let keys: Vec<_> = arg.as_object().unwrap().keys().cloned().collect();
                    assert_eq!(keys, ["name", "value"], "{node}: {arg}");
                }
            }
        }
    }
}

/// Every value under any of `names`, anywhere in `v`.
fn find_key<'a>(v: &'a Value, names: &[&str]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if names.contains(&k.as_str()) {
                    out.push(child);
                }
                out.extend(find_key(child, names));
            }
        }
        Value::Array(items) => items.iter().for_each(|i| out.extend(find_key(i, names))),
        _ => {}
    }
    out
}

#[test]
fn join_config_discovers_the_control_plane_with_the_given_credentials() {
    let resolved = default_resolved();
    let token = certs::bootstrap_token();
    let hash = format!("sha256:{}", "ab".repeat(32));
    let text = kubeadm::join_config(&resolved, "app2-worker-0", &token, &hash).unwrap();
    let join = doc_of_kind(&text, "JoinConfiguration");
    let bt = &join["discovery"]["bootstrapToken"];
    assert_eq!(bt["apiServerEndpoint"], "192.168.64.30:6443");
    assert_eq!(bt["token"], token.as_str());
    assert_eq!(bt["caCertHashes"], json!([hash]));
    assert!(bt.get("unsafeSkipCAVerification").is_none());
    assert_eq!(join["nodeRegistration"]["name"], "app2-worker-0");
    assert_eq!(
        join["nodeRegistration"]["kubeletExtraArgs"],
        json!([{"name": "node-ip", "value": "192.168.64.31"}])
    );
    assert!(
        !text.contains("placeholder"),
        "real credentials are not called placeholders"
    );
}

#[test]
fn placeholder_credentials_are_marked_in_the_file() {
    let text = kubeadm::join_config(
        &default_resolved(),
        "mgmt-worker-0",
        PLACEHOLDER_TOKEN,
        PLACEHOLDER_CA_HASH,
    )
    .unwrap();
    assert!(text.starts_with("# "));
    assert!(text.contains("minted at join time"));
}

#[test]
fn join_refuses_bad_input_before_it_reaches_a_vm() {
    let r = default_resolved();
    let ok_hash = PLACEHOLDER_CA_HASH;
    assert!(matches!(
        kubeadm::join_config(&r, "mgmt-cp", PLACEHOLDER_TOKEN, ok_hash),
        Err(K8sError::JoinOfControlPlane(_))
    ));
    assert!(matches!(
        kubeadm::join_config(&r, "nope", PLACEHOLDER_TOKEN, ok_hash),
        Err(K8sError::UnknownNode(_))
    ));
    assert!(matches!(
        kubeadm::join_config(&r, "mgmt-worker-0", "Not.A.Token", ok_hash),
        Err(K8sError::BadToken { .. })
    ));
    assert!(matches!(
        kubeadm::join_config(&r, "mgmt-worker-0", PLACEHOLDER_TOKEN, "sha256:00"),
        Err(K8sError::BadCaHash { .. })
    ));
    assert!(matches!(
        kubeadm::init_config(&r, "prod"),
        Err(K8sError::UnknownCluster(_))
    ));
}

#[test]
fn addresses_follow_the_providers_subnet() {
    let subnet = "192.168.252.0/24".parse().unwrap();
    let resolved = topology::default_topology().resolve(Some(subnet)).unwrap();
    let text = kubeadm::init_config(&resolved, "mgmt").unwrap();
    let cc = doc_of_kind(&text, "ClusterConfiguration");
    assert_eq!(cc["controlPlaneEndpoint"], "192.168.252.10:6443");
    assert!(
        cc["apiServer"]["certSANs"]
            .as_array()
            .unwrap()
            .contains(&json!("192.168.252.10"))
    );
}

#[test]
fn a_version_without_patch_lets_kubeadm_pick_the_newest_patch() {
    let mut topology = topology::default_topology();
    topology.clusters[0].kubernetes_version = "v1.35".parse().unwrap();
    let resolved = topology.resolve(None).unwrap();
    let text = kubeadm::init_config(&resolved, "mgmt").unwrap();
    assert_eq!(
        doc_of_kind(&text, "ClusterConfiguration")["kubernetesVersion"],
        "stable-1.35"
    );
}
