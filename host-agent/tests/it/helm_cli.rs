//! The Helm interface against `fixtures/helm-standin` (a test stand-in
//! reproducing helm v3's output and exit codes): argv, the pinned chart
//! (pulled into the chart cache, installed from there), the rendered
//! values, 0600 kubeconfig, and every failure class.

use host_agent::charts::ChartStore;
use host_agent::cluster_api::install::install_cilium;
use host_agent::cluster_config::versions;
use host_agent::helm::{Helm, HelmCli, HelmError};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const STANDIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/helm-standin");

fn calls(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Runs `install_cilium` for app1 with the stand-in; `fail` picks the class.
async fn install(fail: &str) -> (tempfile::TempDir, Result<String, HelmError>, String) {
    let home = tempfile::tempdir().expect("tempdir");
    let topology = topology::default_topology();
    let pki = certs::Pki::open_or_init(
        home.path(),
        &host_agent::pki::spec_for(&topology.resolve(None).expect("resolves")),
    )
    .expect("pki");
    let resolved = topology.resolve(None).expect("resolve");
    let expected_values =
        host_agent::cluster_config::cilium::values(&resolved, "app1", Some(&pki.clustermesh_ca()))
            .expect("values");
    // The stand-in reads its directory and failure class from the environment;
    // each test passes them through a wrapper script so tests share nothing.
    let wrapper = home.path().join("helm-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nHELM_STANDIN_DIR='{}' HELM_STANDIN_FAIL='{fail}' exec '{STANDIN}' \"$@\"\n",
            home.path().display(),
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let helm = HelmCli::new(&wrapper);
    let kubeconfig = pki
        .cluster("app1")
        .expect("cluster")
        .mint_admin_kubeconfig("app1", "https://192.168.64.20:6443", "app1")
        .expect("mint");
    let charts = ChartStore::new(home.path(), None);
    let result = install_cilium(
        &helm,
        &charts,
        &pki,
        &resolved,
        "app1",
        &kubeconfig,
        Duration::from_secs(600),
    )
    .await;
    (home, result, expected_values)
}

#[tokio::test]
async fn upgrade_install_uses_the_pinned_chart_and_the_rendered_values() {
    let (home, result, expected_values) = install("").await;
    let out = result.expect("install");
    assert!(out.contains("STATUS: deployed"), "{out}");
    let calls = calls(home.path());
    assert_eq!(calls.len(), 2, "{calls:?}");
    // No `helm repo add`: the chart is pulled into the cache by URL…
    let pull: Vec<&str> = calls[0]["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("str"))
        .collect();
    assert_eq!(
        pull[..6],
        [
            "pull",
            "cilium",
            "--repo",
            versions::CILIUM_CHART_REPO,
            "--version",
            versions::CILIUM_CHART_VERSION,
        ]
    );
    assert_eq!(pull[6], "--destination");
    let archive = home.path().join(format!(
        "charts/cilium-{}.tgz",
        versions::CILIUM_CHART_VERSION
    ));
    let argv: Vec<&str> = calls[1]["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("str"))
        .collect();
    assert_eq!(
        argv[..8],
        [
            "upgrade",
            "--install",
            "cilium",
            // …and installed from the verified archive.
            archive.to_str().expect("utf-8"),
            "--version",
            versions::CILIUM_CHART_VERSION,
            "--namespace",
            versions::CILIUM_NAMESPACE
        ]
    );
    assert_eq!(argv[8], "-f");
    assert_eq!(argv[10], "--kubeconfig");
    assert_eq!(argv[12..], ["--wait", "--timeout", "600s"]);
    assert_eq!(calls[1]["values"].as_str(), Some(expected_values.as_str()));
    assert_eq!(calls[1]["kubeconfig_mode"], 0o600);
    assert!(
        !Path::new(argv[9]).exists(),
        "the values file is removed after the call"
    );
    assert!(
        !Path::new(argv[11]).exists(),
        "the kubeconfig file is removed after the call"
    );
}

#[tokio::test]
async fn each_failure_class_is_recognised() {
    let (_h, r, _) = install("chart-not-found").await;
    let err = r.expect_err("not found");
    assert!(
        matches!(&err, HelmError::ChartNotFound { version, .. } if version == versions::CILIUM_CHART_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains("helm repo update"), "{err}");

    let (_h, r, _) = install("unreachable").await;
    let err = r.expect_err("unreachable");
    assert!(
        matches!(&err, HelmError::Unreachable { message, .. } if message.contains("connection refused")),
        "{err:?}"
    );

    let (_h, r, _) = install("timeout").await;
    assert!(matches!(r, Err(HelmError::TimedOut { .. })), "{r:?}");

    let (_h, r, _) = install("install-failed").await;
    let err = r.expect_err("failed");
    assert!(
        matches!(&err, HelmError::Failed { code: 1, message, .. } if message.starts_with("INSTALLATION FAILED")),
        "{err:?}"
    );
}

#[tokio::test]
async fn version_and_a_missing_helm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wrapper = dir.path().join("helm");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nHELM_STANDIN_DIR='{}' exec '{STANDIN}' \"$@\"\n",
            dir.path().display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    assert_eq!(
        HelmCli::new(&wrapper).version().await.expect("version"),
        "v3.19.0+g3d8990f"
    );
    let missing = HelmCli::new(dir.path().join("no-such-helm"));
    let err = missing.version().await.expect_err("missing");
    assert!(matches!(err, HelmError::NotInstalled { .. }), "{err:?}");
    assert!(err.to_string().contains("install Helm"), "{err}");
}
