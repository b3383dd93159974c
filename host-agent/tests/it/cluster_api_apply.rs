//! Server-side apply of the rendered manifests and of upstream CRDs,
//! against the stand-in API server.

use test_support::kube_api as kube_support;

use host_agent::cluster_api::KubeError;
use host_agent::cluster_api::apply::{ApplyOptions, apply_yaml, parse_documents};
use host_agent::cluster_api::install::{YamlDir, apply_base_manifests, install_gateway_api_crds};
use kube_support::{client, conflict, pki, start, status};
use serde_json::Value;

/// (path, name) every document of the manifests goes to.
fn expected_path(doc: &Value) -> String {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let kind_ref = host_agent::cluster_api::resources::KINDS
        .iter()
        .find(|k| k.kind == kind)
        .unwrap_or_else(|| panic!("{kind} in the table"));
    let prefix = if kind_ref.group.is_empty() {
        format!("/api/{}", kind_ref.version)
    } else {
        format!("/apis/{}/{}", kind_ref.group, kind_ref.version)
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    match kind_ref.namespaced {
        true => format!(
            "{prefix}/namespaces/{}/{}/{name}",
            doc["metadata"]["namespace"].as_str().unwrap_or("default"),
            kind_ref.plural
        ),
        false => format!("{prefix}/{}/{name}", kind_ref.plural),
    }
}

#[tokio::test]
async fn every_manifest_of_every_default_cluster_goes_out_as_server_side_apply() {
    let (_home, pki) = pki();
    let resolved = topology::default_topology().resolve(None).expect("resolve");
    for cluster in ["mgmt", "app1", "app2"] {
        let server = start(&pki, cluster).await;
        let c = client(&pki, cluster, &server).await;
        let applied = apply_base_manifests(&c, &resolved, cluster)
            .await
            .expect("apply");
        let mut expected: Vec<Value> = Vec::new();
        for (file, yaml) in
            host_agent::cluster_config::manifests::for_cluster(&resolved, cluster).expect("render")
        {
            for doc in parse_documents(&file, &yaml).expect("parse") {
                expected.push(serde_json::to_value(&doc.object).expect("json"));
            }
        }
        let requests = server.requests();
        assert_eq!(
            requests.len(),
            expected.len(),
            "{cluster}: one PATCH per document"
        );
        assert_eq!(applied.len(), expected.len());
        for (req, doc) in requests.iter().zip(&expected) {
            assert_eq!(req.method, "PATCH");
            assert_eq!(req.path, expected_path(doc), "{cluster}");
            assert_eq!(req.content_type, "application/apply-patch+yaml");
            assert!(req.query.contains("fieldManager=hostctl"), "{}", req.query);
            assert!(!req.query.contains("force=true"), "no force by default");
            let sent: Value = serde_json::from_str(&req.body).expect("body is JSON");
            assert_eq!(&sent, doc, "{cluster}: the body is the rendered object");
        }
        // the PSA labels and the pools reach the server
        let bodies: Vec<&str> = requests.iter().map(|r| r.body.as_str()).collect();
        assert!(
            bodies
                .iter()
                .any(|b| b.contains("pod-security.kubernetes.io/enforce"))
        );
        assert!(requests.iter().any(|r| r.path.contains("/ipaddresspools/")));
        assert!(
            requests
                .iter()
                .any(|r| r.path.ends_with("/storageclasses/local-path"))
        );
    }
}

const POOL: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: mgmt-pool\n  namespace: metallb-system\nspec:\n  addresses: [192.168.64.200-192.168.64.219]\n";

#[tokio::test]
async fn a_conflict_names_the_object_and_the_other_manager() {
    let (_home, pki) = pki();
    let server = start(&pki, "mgmt").await;
    server.fail_patch(
        "mgmt-pool",
        409,
        conflict("kubectl-edit", "metallb.io/v1beta1", ".spec.addresses"),
    );
    let c = client(&pki, "mgmt", &server).await;
    let err = apply_yaml(&c, "30-metallb.yaml", POOL, ApplyOptions::default())
        .await
        .expect_err("conflict");
    let KubeError::Conflict { object, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(object, "IPAddressPool metallb-system/mgmt-pool");
    assert!(message.contains("\"kubectl-edit\""), "{message}");
    assert!(message.contains(".spec.addresses"), "{message}");

    server.state.lock().expect("state").patch_errors.clear();
    apply_yaml(&c, "30-metallb.yaml", POOL, ApplyOptions { force: true })
        .await
        .expect("forced");
    assert!(
        server
            .requests()
            .last()
            .expect("req")
            .query
            .contains("force=true")
    );
}

#[tokio::test]
async fn invalid_and_internal_errors_keep_code_reason_and_message() {
    let (_home, pki) = pki();
    let server = start(&pki, "mgmt").await;
    let invalid = "StorageClass.storage.k8s.io \"local-path\" is invalid: provisioner: Forbidden: updates to provisioner are forbidden.";
    server.fail_patch("local-path", 422, status(422, "Invalid", invalid));
    let webhook = "Internal error occurred: failed calling webhook \"ipaddresspoolvalidationwebhook.metallb.io\": failed to call webhook: connect: connection refused";
    server.fail_patch("mgmt-pool", 500, status(500, "InternalError", webhook));
    let c = client(&pki, "mgmt", &server).await;
    let sc = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: local-path}\nprovisioner: rancher.io/local-path\n";
    let err = apply_yaml(&c, "20-storageclasses.yaml", sc, ApplyOptions::default())
        .await
        .expect_err("422");
    assert!(
        matches!(&err, KubeError::Api { status: 422, reason, .. } if reason == "Invalid"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("StorageClass local-path")
            && err.to_string().contains("forbidden"),
        "{err}"
    );
    let err = apply_yaml(&c, "30-metallb.yaml", POOL, ApplyOptions::default())
        .await
        .expect_err("500");
    assert!(
        matches!(&err, KubeError::Api { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("failed calling webhook"), "{err}");
}

#[test]
fn bad_documents_are_named_by_index() {
    let yaml =
        "# header\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [oops\n";
    let err = parse_documents("x.yaml", yaml).expect_err("decode");
    assert!(matches!(err, KubeError::Decode { index: 2, .. }), "{err:?}");
    let unknown = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
    let err = parse_documents("y.yaml", unknown).expect_err("unknown kind");
    assert!(err.to_string().contains("does not apply v1/Pod"), "{err}");
    let nameless = "apiVersion: v1\nkind: Namespace\nmetadata: {}\n";
    assert!(parse_documents("z.yaml", nameless).is_err());
}

#[tokio::test]
async fn gateway_api_crds_come_from_an_injectable_source_and_apply_server_side() {
    let (_home, pki) = pki();
    let server = start(&pki, "app1").await;
    let c = client(&pki, "app1", &server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gatewayclasses.gateway.networking.k8s.io\n  annotations: {gateway.networking.k8s.io/bundle-version: v1.4.1}\nspec:\n  group: gateway.networking.k8s.io\n  names: {kind: GatewayClass, plural: gatewayclasses}\n  scope: Cluster\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]\n";
    std::fs::write(dir.path().join("gatewayclasses.yaml"), crd).expect("write");
    let applied = install_gateway_api_crds(&c, &YamlDir(dir.path().to_path_buf()))
        .await
        .expect("crds");
    assert_eq!(
        applied,
        ["CustomResourceDefinition gatewayclasses.gateway.networking.k8s.io"]
    );
    let req = &server.requests()[0];
    assert_eq!(
        req.path,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gatewayclasses.gateway.networking.k8s.io"
    );
    assert_eq!(req.content_type, "application/apply-patch+yaml");
}
