//! The per-cluster manifests: MetalLB pools are the topology's pools,
//! StorageClasses match SPEC §7, and PSA matches SPEC §8.

use crate::cluster_config_support;

use cluster_config_support::{default_resolved, docs};
use host_agent::cluster_config::manifests::{self, psa};
use serde_json::{Value, json};
use std::net::Ipv4Addr;

fn manifest(cluster: &str, file: &str) -> Vec<Value> {
    let files = manifests::for_cluster(&default_resolved(), cluster).expect("renders");
    let (_, text) = files
        .iter()
        .find(|(name, _)| name == file)
        .unwrap_or_else(|| panic!("{cluster}: no {file}"));
    docs(text)
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// `a-b` ranges as inclusive u32 bounds.
fn range(text: &str) -> (u32, u32) {
    let (a, b) = text.split_once('-').expect("a range");
    let ip = |s: &str| u32::from(s.parse::<Ipv4Addr>().expect("an address"));
    (ip(a), ip(b))
}

#[test]
fn files_are_named_in_apply_order() {
    let names: Vec<String> = manifests::for_cluster(&default_resolved(), "mgmt")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 5);
    assert_eq!(
        names.last().map(String::as_str),
        Some(manifests::NETWORK_POLICY_FILE)
    );
}

#[test]
fn metallb_pools_cover_exactly_the_topologys_pool() {
    let resolved = default_resolved();
    for cluster in ["mgmt", "app1", "app2"] {
        let topo = resolved.pool(cluster).unwrap();
        let docs = manifest(cluster, manifests::METALLB_FILE);
        let pools = of_kind(&docs, "IPAddressPool");
        let mut ranges: Vec<(u32, u32)> = pools
            .iter()
            .flat_map(|p| p["spec"]["addresses"].as_array().unwrap().clone())
            .map(|a| range(a.as_str().unwrap()))
            .collect();
        ranges.sort();
        // contiguous, no gaps or overlaps, from the pool's start to its end
        assert_eq!(
            ranges.first().unwrap().0,
            u32::from(topo.start),
            "{cluster}"
        );
        assert_eq!(ranges.last().unwrap().1, u32::from(topo.end), "{cluster}");
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0, "{cluster}: {ranges:?}");
        }
        for p in &pools {
            assert_eq!(p["apiVersion"], "metallb.io/v1beta1");
            assert_eq!(p["metadata"]["namespace"], "metallb-system");
        }
        // the reserved mesh address is never handed out automatically
        let reserved = pools
            .iter()
            .find(|p| p["metadata"]["name"] == format!("{cluster}-clustermesh"))
            .unwrap();
        assert_eq!(reserved["spec"]["autoAssign"], false);
        assert_eq!(
            range(reserved["spec"]["addresses"][0].as_str().unwrap()).0,
            u32::from(topo.start)
        );
        let l2 = of_kind(&docs, "L2Advertisement");
        assert_eq!(l2.len(), 1);
        let names: Vec<Value> = pools
            .iter()
            .map(|p| p["metadata"]["name"].clone())
            .collect();
        assert_eq!(l2[0]["spec"]["ipAddressPools"], Value::from(names));
    }
}

#[test]
fn storage_classes_are_the_specs() {
    let docs = manifest("app1", manifests::STORAGE_CLASSES_FILE);
    let classes = of_kind(&docs, "StorageClass");
    let summary: Vec<(Value, Value, Value, Value)> = classes
        .iter()
        .map(|c| {
            (
                c["metadata"]["name"].clone(),
                c["provisioner"].clone(),
                c["reclaimPolicy"].clone(),
                c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                json!("local-path"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("true")
            ),
            (
                json!("local-path-retain"),
                json!("rancher.io/local-path"),
                json!("Retain"),
                Value::Null
            ),
        ]
    );
    assert!(
        classes
            .iter()
            .all(|c| c["volumeBindingMode"] == "WaitForFirstConsumer")
    );
    // Both make `local` PVs, which Velero's file-system backup copies
    // (hostPath ones it skips); an annotation, as the provisioner reads it.
    for c in &classes {
        assert_eq!(
            c["metadata"]["annotations"]["defaultVolumeType"], "local",
            "{c}"
        );
        assert!(c["parameters"].get("defaultVolumeType").is_none(), "{c}");
    }
}

#[test]
fn local_path_provisioner_is_complete_and_pinned() {
    let docs = manifest("mgmt", manifests::LOCAL_PATH_FILE);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "Role",
            "ClusterRole",
            "RoleBinding",
            "ClusterRoleBinding",
            "Deployment",
            "ConfigMap"
        ]
    );
    let deployment = of_kind(&docs, "Deployment")[0];
    let image = &deployment["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(
        image,
        host_agent::cluster_config::versions::LOCAL_PATH_IMAGE
    );
    let ns = of_kind(&docs, "Namespace")[0];
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "privileged",
        "helper pods use hostPath"
    );
    let config = of_kind(&docs, "ConfigMap")[0];
    let json: Value =
        serde_json::from_str(config["data"]["config.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        json["nodePathMap"][0]["paths"],
        json!(["/opt/local-path-provisioner"])
    );
    let helper: Value =
        serde_saphyr::from_str(config["data"]["helperPod.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        helper["spec"]["containers"][0]["image"],
        host_agent::cluster_config::versions::LOCAL_PATH_HELPER_IMAGE
    );
}

#[test]
fn exempt_namespaces_are_the_specs_less_cilium_system_privileged_and_say_why() {
    let docs = manifest("app2", manifests::NAMESPACES_FILE);
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    // The spec's four less cilium-system (Cilium runs in kube-system).
    assert_eq!(names, ["kube-system", "monitoring", "vault"]);
    for d in &docs {
        assert_eq!(d["kind"], "Namespace");
        assert_eq!(
            d["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        assert!(
            d["metadata"]["annotations"][psa::BECAUSE_ANNOTATION]
                .as_str()
                .is_some_and(|why| !why.is_empty()),
            "{d}"
        );
    }
}

#[test]
fn admission_config_sets_the_specs_defaults_and_exemptions() {
    let text = manifests::admission_config().unwrap();
    let doc = &docs(&text)[0];
    assert_eq!(doc["apiVersion"], "apiserver.config.k8s.io/v1");
    assert_eq!(doc["kind"], "AdmissionConfiguration");
    let plugin = &doc["plugins"][0];
    assert_eq!(plugin["name"], "PodSecurity");
    let cfg = &plugin["configuration"];
    assert_eq!(cfg["apiVersion"], "pod-security.admission.config.k8s.io/v1");
    assert_eq!(cfg["kind"], "PodSecurityConfiguration");
    assert_eq!(cfg["defaults"]["enforce"], "baseline");
    assert_eq!(cfg["defaults"]["audit"], "restricted");
    assert_eq!(cfg["defaults"]["warn"], "restricted");
    assert_eq!(
        cfg["exemptions"]["namespaces"],
        json!(psa::EXEMPT_NAMESPACES)
    );
}

#[test]
fn the_api_server_reads_the_admission_config_from_a_mounted_directory() {
    let text =
        host_agent::cluster_config::kubeadm::init_config(&default_resolved(), "mgmt").unwrap();
    let cc = cluster_config_support::doc_of_kind(&text, "ClusterConfiguration");
    let api = &cc["apiServer"];
    assert!(api["extraArgs"].as_array().unwrap().contains(
        &json!({"name": "admission-control-config-file", "value": psa::ADMISSION_CONFIG_PATH})
    ));
    let volume = &api["extraVolumes"][0];
    assert_eq!(volume["hostPath"], psa::ADMISSION_CONFIG_DIR);
    assert_eq!(volume["mountPath"], psa::ADMISSION_CONFIG_DIR);
    assert_eq!(volume["readOnly"], true);
    assert!(psa::ADMISSION_CONFIG_PATH.starts_with(psa::ADMISSION_CONFIG_DIR));
}
