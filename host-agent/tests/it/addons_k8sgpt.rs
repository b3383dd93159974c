//! k8sgpt: off without a backend in the topology (no analyser, no
//! credential, no RBAC anywhere); with one, an analyser per cluster whose
//! objects pass `validate-manifests` (the K8sGPT CRD of operator 0.2.27),
//! the API key only ever as an ExternalSecret reference, and kubeconfigs
//! whose minted read-only identity the right cluster's API server accepts
//! and the other's refuses.

use crate::addons_argocd_credentials::list_nodes;
use crate::addons_upstream_schema::{run, tools_usable};
use crate::cluster_config_support::addon_objects_of;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use host_agent::addons::render::PlatformSource;
use serde_json::Value;
use std::path::PathBuf;
use test_support::kube_api::{node, pki, start};
use topology::Resolved;

fn with_backend(section: &str) -> Resolved {
    let src = format!("{}{section}", topology::default_yaml());
    topology::parse(&src, "t.yaml")
        .expect("loads")
        .topology
        .resolve(None)
        .expect("resolves")
}

const OPENAI: &str = "observability:\n  k8sgpt:\n    backend: openai\n    model: gpt-4o-mini\n";
const LOCAL: &str = "observability:\n  k8sgpt:\n    backend: localai\n    model: \"qwen2.5:7b\"\n    baseUrl: http://192.168.64.1:11434/v1\n";

fn kinds<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn without_a_backend_nothing_is_analysed_and_no_identity_exists() {
    let resolved = with_backend("");
    assert!(!host_agent::addons::k8sgpt::is_on(&resolved));
    assert!(addon_objects_of(&resolved, None, "mgmt", "k8sgpt").is_empty());
    for cluster in ["mgmt", "app1", "app2"] {
        assert!(
            addon_objects_of(&resolved, None, cluster, "k8sgpt-access").is_empty(),
            "{cluster}"
        );
    }
}

#[test]
fn a_keyed_backend_reads_its_key_from_vault_and_every_cluster_is_analysed() {
    let resolved = with_backend(OPENAI);
    let objects = addon_objects_of(&resolved, None, "mgmt", "k8sgpt");
    let secrets = kinds(&objects, "ExternalSecret");
    assert_eq!(secrets.len(), 1, "{objects:?}");
    let remote = &secrets[0]["spec"]["data"][0]["remoteRef"];
    assert_eq!(remote["key"], "mgmt/k8sgpt");
    assert_eq!(remote["property"], "api-key");
    assert_eq!(secrets[0]["spec"]["secretStoreRef"]["name"], "vault");
    let analysers = kinds(&objects, "K8sGPT");
    let names: Vec<&str> = analysers
        .iter()
        .filter_map(|a| a["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["k8sgpt-mgmt", "k8sgpt-app1", "k8sgpt-app2"]);
    let kubeconfigs: Vec<&str> = kinds(&objects, "Secret")
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .collect();
    for a in &analysers {
        let ai = &a["spec"]["ai"];
        assert_eq!(ai["backend"], "openai");
        assert_eq!(ai["model"], "gpt-4o-mini");
        assert_eq!(ai["anonymized"], true);
        assert_eq!(ai["secret"]["name"], secrets[0]["spec"]["target"]["name"]);
        assert_eq!(ai["secret"]["key"], "api-key");
        let kubeconfig = a["spec"]["kubeconfig"]["name"]
            .as_str()
            .expect("kubeconfig");
        assert!(kubeconfigs.contains(&kubeconfig), "{kubeconfig}");
    }
    // The review rendering carries no key of any kind.
    let text = serde_json::to_string(&objects).unwrap();
    assert!(!text.contains("BEGIN"), "{text}");
    for cluster in ["mgmt", "app1", "app2"] {
        let access = addon_objects_of(&resolved, None, cluster, "k8sgpt-access");
        let role = kinds(&access, "ClusterRole");
        let rules = serde_json::to_string(&role[0]["rules"]).unwrap();
        assert!(
            !rules.contains("secrets") && !rules.contains("configmaps"),
            "{rules}"
        );
        assert!(
            !rules.contains("create") && !rules.contains("\"*\""),
            "{rules}"
        );
        let binding = kinds(&access, "ClusterRoleBinding");
        assert_eq!(binding[0]["subjects"][0]["name"], "hostctl:k8sgpt");
        assert_eq!(binding[0]["roleRef"]["name"], role[0]["metadata"]["name"]);
    }
}

#[test]
fn a_local_backend_needs_no_key() {
    let resolved = with_backend(LOCAL);
    let objects = addon_objects_of(&resolved, None, "mgmt", "k8sgpt");
    assert!(kinds(&objects, "ExternalSecret").is_empty());
    for a in kinds(&objects, "K8sGPT") {
        assert_eq!(a["spec"]["ai"]["backend"], "localai");
        assert_eq!(a["spec"]["ai"]["baseUrl"], "http://192.168.64.1:11434/v1");
        assert!(a["spec"]["ai"].get("secret").is_none(), "{a}");
    }
}

#[test]
fn the_analysers_objects_pass_the_k8sgpt_and_kubernetes_schemas() {
    if !tools_usable("k8sgpt manifest schemas") {
        return;
    }
    for section in [OPENAI, LOCAL] {
        let resolved = with_backend(section);
        let out = tempfile::tempdir().unwrap();
        let platform = PlatformSource::served_by_host(&resolved, None);
        host_agent::cluster_config::render_all(&resolved, None, &platform, out.path()).unwrap();
        let mut files: Vec<PathBuf> = Vec::new();
        for (cluster, addon) in [
            ("mgmt", "k8sgpt"),
            ("mgmt", "k8sgpt-access"),
            ("app1", "k8sgpt-access"),
            ("app2", "k8sgpt-access"),
        ] {
            let dir = out
                .path()
                .join(format!("clusters/{cluster}/addons/{addon}/manifests"));
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
                files.push(entry.unwrap().path());
            }
        }
        let (ok, text) = run("validate-manifests", &files);
        assert!(ok && text.contains("0 invalid"), "{section}\n{text}");
    }
}

/// The kubeconfig in mgmt's Secret for `cluster`'s analyser, minted.
fn minted_kubeconfig(pki: &certs::Pki, cluster: &str) -> String {
    let resolved = with_backend(OPENAI);
    let objects = addon_objects_of(&resolved, Some(pki), "mgmt", "k8sgpt");
    let secret = kinds(&objects, "Secret")
        .into_iter()
        .find(|s| s["metadata"]["name"] == format!("k8sgpt-kubeconfig-{cluster}"))
        .unwrap_or_else(|| panic!("no kubeconfig for {cluster}"));
    let yaml = secret["stringData"]["kubeconfig"]
        .as_str()
        .expect("kubeconfig");
    let ip = resolved
        .node_ip(&format!("{cluster}-cp"))
        .expect("control plane");
    assert!(yaml.contains(&format!("https://{ip}:6443")), "{yaml}");
    yaml.to_owned()
}

#[tokio::test]
async fn each_analysers_identity_is_accepted_by_its_cluster_only_and_is_not_admin() {
    let (_home, pki) = pki();
    let server = start(&pki, "app1").await;
    server.set_nodes(vec![node("app1-cp", true)]);
    let point = |yaml: &str| {
        let ip = with_backend(OPENAI).node_ip("app1-cp").expect("ip");
        yaml.replace(&format!("https://{ip}:6443"), &server.url())
    };
    let app1 = point(&minted_kubeconfig(&pki, "app1"));
    assert_eq!(list_nodes(&app1).await.expect("app1 accepts"), ["app1-cp"]);

    // app2's identity, trusting app1's server: refused in the handshake.
    let app2: Value = serde_yaml_ok(&minted_kubeconfig(&pki, "app2"));
    let app1_doc: Value = serde_yaml_ok(&app1);
    let mut crossed = app1_doc.clone();
    crossed["users"][0]["user"] = app2["users"][0]["user"].clone();
    let err = list_nodes(&crossed.to_string())
        .await
        .expect_err("app2's certificate is refused by app1");
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");

    // The certificate names the reader group, never system:masters.
    let cert = B64
        .decode(
            app1_doc["users"][0]["user"]["client-certificate-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let der = certs::cert_der_from_pem(&String::from_utf8(cert).unwrap()).unwrap();
    assert_eq!(certs::roles_of(&der).unwrap(), ["hostctl:k8sgpt"]);
    assert_eq!(
        certs::common_name_of(&der).unwrap().as_deref(),
        Some("hostctl:k8sgpt-reader")
    );
}

fn serde_yaml_ok(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).expect("kubeconfig is YAML")
}
