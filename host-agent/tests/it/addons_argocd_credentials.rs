//! Argo CD's cluster Secrets carry working client credentials: each app
//! cluster's certificate is checked by OpenSSL against that cluster's CA
//! (and refused by the other's), names Argo CD's user and group and never
//! `system:masters`, and is accepted by the stand-in API server's mTLS —
//! while the other app cluster's certificate is refused there. The review
//! rendering carries placeholders and no key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use host_agent::addons::argocd::clusters::{IN_CLUSTER, PLACEHOLDER};
use host_agent::addons::render::{Credentials, PlatformSource, RenderContext, render_cluster};
use host_agent::cluster_api::apply::parse_documents;
use host_agent::cluster_api::client::client_from_kubeconfig;
use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use test_support::kube_api::{ApiServer, node, pki, start};
use test_support::skip::skip;
use topology::{ClusterRole, Resolved};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The group in the certificates, which every app cluster binds.
const GROUP: &str = "hostctl:argocd";

/// One app cluster's Secret: `tlsClientConfig` as written (base64) and
/// decoded.
struct AppCredentials {
    server: String,
    tls: Value,
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn resolved() -> Resolved {
    topology::default_topology()
        .resolve(None)
        .expect("resolves")
}

fn platform() -> PlatformSource {
    PlatformSource {
        repo_url: "https://192.168.64.1:7447/platform.git".into(),
        server_name: "192.168.64.1".into(),
        server_cert_pem: None,
    }
}

/// The Secrets of mgmt's `argocd` add-on, `10-clusters.yaml`, by cluster.
fn cluster_secrets(resolved: &Resolved, credentials: Credentials<'_>) -> BTreeMap<String, Value> {
    let platform = platform();
    let ctx = RenderContext {
        resolved,
        cluster: "mgmt",
        credentials,
        platform: &platform,
        backup: None,
    };
    let rendered = render_cluster(&ctx).expect("renders");
    let argocd = rendered
        .iter()
        .find(|r| r.addon.name == "argocd-platform")
        .expect("mgmt has the argocd add-on");
    let manifest = argocd
        .manifests
        .iter()
        .find(|m| m.file == "10-clusters.yaml")
        .expect("10-clusters.yaml");
    let mut out = BTreeMap::new();
    for doc in parse_documents(&manifest.file, &manifest.yaml).expect("parses") {
        assert_eq!(doc.kind.kind, "Secret", "{}", doc.describe());
        let object = serde_json::to_value(&doc.object).expect("json");
        assert_eq!(object["metadata"]["namespace"], "argocd");
        assert_eq!(
            object["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
            "cluster"
        );
        let name = object["stringData"]["name"]
            .as_str()
            .expect("stringData.name")
            .to_owned();
        assert_eq!(
            object["metadata"]["name"].as_str(),
            Some(format!("cluster-{name}").as_str())
        );
        assert!(out.insert(name, object).is_none(), "one Secret per cluster");
    }
    let clusters: std::collections::BTreeSet<&str> = resolved
        .topology()
        .clusters()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        out.keys().map(String::as_str).eq(clusters),
        "a Secret for every cluster: {:?}",
        out.keys()
    );
    out
}

/// `stringData.config` of a cluster Secret, parsed.
fn config(secret: &Value) -> Value {
    let text = secret["stringData"]["config"].as_str().expect("config");
    serde_json::from_str(text).expect("config is JSON")
}

fn decode(tls: &Value, field: &str) -> String {
    let b64 = tls[field].as_str().unwrap_or_else(|| panic!("{field}"));
    String::from_utf8(
        B64.decode(b64)
            .unwrap_or_else(|e| panic!("{field} is base64: {e}")),
    )
    .expect("PEM is text")
}

/// The minted credentials of every app cluster, by cluster.
fn app_credentials(pki: &certs::Pki) -> BTreeMap<String, AppCredentials> {
    let resolved = resolved();
    let secrets = cluster_secrets(&resolved, Credentials::Mint(pki));
    let mut out = BTreeMap::new();
    for cluster in resolved.topology().clusters() {
        let secret = &secrets[&cluster.name];
        let role = secret["metadata"]["labels"]["hostctl.dev/role"].clone();
        let server = secret["stringData"]["server"]
            .as_str()
            .expect("server")
            .to_owned();
        let config = config(secret);
        if cluster.role == ClusterRole::Mgmt {
            assert_eq!(role, "mgmt");
            assert_eq!(server, IN_CLUSTER);
            assert!(config["tlsClientConfig"].get("keyData").is_none());
            assert!(!config.to_string().contains("BEGIN"), "mgmt carries no key");
            continue;
        }
        assert_eq!(role, "app");
        let tls = config["tlsClientConfig"].clone();
        let creds = AppCredentials {
            server,
            ca_pem: decode(&tls, "caData"),
            cert_pem: decode(&tls, "certData"),
            key_pem: decode(&tls, "keyData"),
            tls,
        };
        assert_eq!(
            creds.ca_pem,
            pki.cluster(&cluster.name).expect("cluster").ca_cert_pem(),
            "{}: caData is the cluster's own CA",
            cluster.name
        );
        assert!(creds.key_pem.contains("PRIVATE KEY"), "{}", cluster.name);
        out.insert(cluster.name.clone(), creds);
    }
    assert!(out.len() >= 2, "two app clusters to cross-check");
    out
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs")
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("text")
}

fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Writes `contents` to `dir/name` (0600: some are keys); `dir` is a
/// tempdir, 0700.
fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path: PathBuf = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("create");
    file.write_all(contents.as_bytes()).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

/// `-nameopt multiline` subject as (attribute, value) pairs.
fn subject(cert: &str) -> Vec<(String, String)> {
    openssl_ok(&[
        "x509",
        "-in",
        cert,
        "-noout",
        "-subject",
        "-nameopt",
        "multiline",
    ])
    .lines()
    .filter_map(|l| l.split_once(" = "))
    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
    .collect()
}

#[test]
fn openssl_verifies_each_certificate_against_its_own_cluster_ca_only() {
    if !have_openssl() {
        skip(
            "openssl_verifies_each_certificate_against_its_own_cluster_ca_only",
            "openssl is not installed",
        );
        return;
    }
    let (_home, pki) = pki();
    let creds = app_credentials(&pki);
    let dir = tempfile::tempdir().expect("tempdir");
    for (cluster, c) in &creds {
        let file = |kind: &str| format!("{cluster}-{kind}.pem");
        let cert = write(dir.path(), &file("cert"), &c.cert_pem);
        let key = write(dir.path(), &file("key"), &c.key_pem);
        let ca = write(
            dir.path(),
            &file("ca"),
            pki.cluster(cluster).expect("cluster").ca_cert_pem(),
        );

        let verify = |ca: &str| {
            openssl(&[
                "verify",
                "-x509_strict",
                "-purpose",
                "sslclient",
                "-CAfile",
                ca,
                &cert,
            ])
        };
        let own = verify(&ca);
        assert!(
            own.status.success(),
            "{cluster}: {}",
            String::from_utf8_lossy(&own.stderr)
        );
        for other in creds.keys().filter(|o| *o != cluster) {
            let other_ca = pki.cluster(other).expect("cluster").ca_cert_pem();
            let other_ca = write(
                dir.path(),
                &format!("{cluster}-vs-{other}-ca.pem"),
                other_ca,
            );
            assert!(
                !verify(&other_ca).status.success(),
                "{cluster}'s certificate verifies against {other}'s CA"
            );
        }

        let subject = subject(&cert);
        let values = |attr: &str| -> Vec<&str> {
            subject
                .iter()
                .filter(|(k, _)| k == attr)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(
            values("commonName"),
            ["hostctl:argocd-manager"],
            "{cluster}: {subject:?}"
        );
        assert_eq!(
            values("organizationName"),
            [GROUP],
            "{cluster}: {subject:?}"
        );
        assert!(
            !subject.iter().any(|(_, v)| v.contains("system:masters")),
            "{cluster}: {subject:?}"
        );

        let eku = openssl_ok(&["x509", "-in", &cert, "-noout", "-ext", "extendedKeyUsage"]);
        assert!(
            eku.contains("TLS Web Client Authentication"),
            "{cluster}: {eku}"
        );
        assert!(!eku.contains("Server Authentication"), "{cluster}: {eku}");

        let from_key = openssl_ok(&["pkey", "-in", &key, "-pubout"]);
        let from_cert = openssl_ok(&["x509", "-in", &cert, "-noout", "-pubkey"]);
        assert!(from_key.contains("BEGIN PUBLIC KEY"), "{from_key}");
        assert_eq!(
            from_key, from_cert,
            "{cluster}: the key is the certificate's"
        );
    }
}

/// A kubeconfig for `server` trusting `ca_data` (base64 PEM) and, when
/// given, presenting `user`'s `certData`/`keyData` exactly as the Secret
/// holds them. JSON is YAML, so kube reads it as a kubeconfig.
fn kubeconfig(server: &str, ca_data: &Value, user: Option<&Value>) -> String {
    let user = user.map_or_else(
        || json!({}),
        |tls| json!({"client-certificate-data": tls["certData"], "client-key-data": tls["keyData"]}),
    );
    json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "argocd",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": "argocd", "user": user}],
        "contexts": [{"name": "argocd", "context": {"cluster": "c", "user": "argocd"}}],
    })
    .to_string()
}

/// The node names `yaml`'s identity can list (also k8sgpt's tests).
pub(crate) async fn list_nodes(yaml: &str) -> Result<Vec<String>, kube::Error> {
    let client = client_from_kubeconfig("app1", yaml, Duration::from_secs(5))
        .await
        .expect("client");
    let nodes = kube::Api::<Node>::all(client)
        .list(&Default::default())
        .await?;
    Ok(nodes
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect())
}

fn node_requests(server: &ApiServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/nodes")
        .count()
}

#[tokio::test]
async fn app1s_api_server_accepts_its_secrets_client_certificate_over_mtls() -> TestResult {
    let (_home, pki) = pki();
    let creds = app_credentials(&pki);
    let app1 = &creds["app1"];
    let control_plane = resolved().node_ip("app1-cp").ok_or("no app1-cp address")?;
    assert_eq!(app1.server, format!("https://{control_plane}:6443"));

    let server = start(&pki, "app1").await;
    server.set_nodes(vec![node("app1-cp", true)]);

    // The path needs a client certificate: without one it is 401.
    let anonymous = kubeconfig(&server.url(), &app1.tls["caData"], None);
    match list_nodes(&anonymous).await {
        Err(kube::Error::Api(status)) if status.code == 401 => {}
        other => panic!("anonymous list of nodes: {other:?}"),
    }

    let yaml = kubeconfig(&server.url(), &app1.tls["caData"], Some(&app1.tls));
    let names = list_nodes(&yaml).await?;
    assert_eq!(names, ["app1-cp"]);
    assert_eq!(node_requests(&server), 2, "anonymous and authenticated");
    Ok(())
}

#[tokio::test]
async fn app1s_api_server_refuses_app2s_client_certificate() -> TestResult {
    let (_home, pki) = pki();
    let creds = app_credentials(&pki);
    let server = start(&pki, "app1").await;
    // Trust app1's serving certificate, present app2's client certificate:
    // only the client certificate is wrong.
    let yaml = kubeconfig(
        &server.url(),
        &creds["app1"].tls["caData"],
        Some(&creds["app2"].tls),
    );
    let err = list_nodes(&yaml)
        .await
        .expect_err("app2's certificate is refused by app1");
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "refused in the TLS handshake, not by the API: {err:?}"
    );
    // The server's alert (the client certificate's signature is not by
    // app1's CA), not a client-side failure.
    assert!(format!("{err:?}").contains("AlertReceived"), "{err:?}");
    assert_eq!(node_requests(&server), 0, "no request got through: {err}");
    Ok(())
}

#[test]
fn the_review_rendering_carries_placeholders_and_no_key() {
    let resolved = resolved();
    let secrets = cluster_secrets(&resolved, Credentials::Placeholder);
    for cluster in resolved.topology().clusters() {
        let config = config(&secrets[&cluster.name]);
        let text = config.to_string();
        assert!(!text.contains("BEGIN"), "{}: {text}", cluster.name);
        if cluster.role == ClusterRole::App {
            for field in ["caData", "certData", "keyData"] {
                assert_eq!(
                    config["tlsClientConfig"][field], PLACEHOLDER,
                    "{}: {field}",
                    cluster.name
                );
            }
        }
    }
}

#[test]
fn every_app_cluster_binds_the_certificates_group_to_cluster_admin() {
    let resolved = resolved();
    let platform = platform();
    for cluster in resolved.topology().clusters() {
        if cluster.role != ClusterRole::App {
            continue;
        }
        let ctx = RenderContext {
            resolved: &resolved,
            cluster: &cluster.name,
            credentials: Credentials::Placeholder,
            platform: &platform,
            backup: None,
        };
        let rendered = render_cluster(&ctx).expect("renders");
        let access = rendered
            .iter()
            .find(|r| r.addon.name == "argocd-access")
            .unwrap_or_else(|| panic!("{} has argocd-access", cluster.name));
        let bindings: Vec<Value> = access
            .manifests
            .iter()
            .flat_map(|m| parse_documents(&m.file, &m.yaml).expect("parses"))
            .filter(|d| d.kind.kind == "ClusterRoleBinding")
            .map(|d| serde_json::to_value(&d.object).expect("json"))
            .collect();
        assert_eq!(bindings.len(), 1, "{}", cluster.name);
        let binding = &bindings[0];
        assert_eq!(binding["roleRef"]["name"], "cluster-admin");
        assert_eq!(
            binding["subjects"],
            json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP}]),
            "{}",
            cluster.name
        );
    }
}
