//! `hostctl charts pull|list` through the real binary with the helm
//! stand-in (`fixtures/helm-standin`), and installs that then use the
//! cache, or the registry mirror when the topology names one.

use host_agent::charts::{ChartStore, Mirror, pinned};
use host_agent::cluster_api::install::install_cilium;
use host_agent::cluster_config::versions;
use host_agent::helm::HelmCli;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const STANDIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/helm-standin");

/// A home, a topology file beside it, and a stand-in recording into `dir`.
struct Rig {
    dir: tempfile::TempDir,
}

impl Rig {
    fn new(mirror: Option<&str>) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut yaml = topology::default_yaml();
        if let Some(url) = mirror {
            yaml.push_str(&format!("mirrors:\n  registryMirror: {url}\n"));
        }
        std::fs::write(dir.path().join("hostctl.yaml"), yaml).expect("topology");
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
        Rig { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn hostctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hostctl"))
            .args(args)
            .current_dir(self.dir.path())
            .env("HOSTCTL_HOME", self.home())
            .env("HOSTCTL_HELM", self.dir.path().join("helm"))
            .env("HOSTCTL_CHARTS_CA", "/etc/harbor-ca.pem")
            .env_remove("HOSTCTL_TOPOLOGY")
            .output()
            .expect("hostctl runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.hostctl(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "hostctl {args:?}: {text}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("json")
    }

    /// `(subcommand, argv)` of every stand-in call so far.
    fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.dir.path().join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("json line");
                v["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().expect("str").to_owned())
                    .collect()
            })
            .collect()
    }

    /// Installs Cilium on app1 with the stand-in; returns its upgrade argv.
    async fn install_cilium(&self, charts: &ChartStore) -> Vec<String> {
        let topology = topology::default_topology();
        let resolved = topology.resolve(None).expect("resolve");
        let pki = certs::Pki::open_or_init(
            &self.dir.path().join("pki"),
            &host_agent::pki::spec_for(&resolved),
        )
        .expect("pki");
        let kubeconfig = pki
            .cluster("app1")
            .expect("cluster")
            .mint_admin_kubeconfig("app1", "https://192.168.64.20:6443", "app1")
            .expect("mint");
        let helm = HelmCli::new(self.dir.path().join("helm"));
        install_cilium(
            &helm,
            charts,
            &pki,
            &resolved,
            "app1",
            &kubeconfig,
            Duration::from_secs(60),
        )
        .await
        .expect("install");
        self.calls()
            .into_iter()
            .rfind(|c| c[0] == "upgrade")
            .expect("an upgrade")
    }
}

fn archive(home: &Path, name: &str, version: &str) -> PathBuf {
    home.join(format!("charts/{name}-{version}.tgz"))
}

#[tokio::test]
async fn pull_fills_the_cache_once_and_installs_use_it() {
    let rig = Rig::new(None);
    let out = rig.ok(&["charts", "pull"]);
    assert!(
        out.contains(&format!("{} chart(s)", pinned().len()))
            && out.contains(&format!("{} pulled", pinned().len())),
        "{out}"
    );
    let pulls: Vec<Vec<String>> = rig.calls().into_iter().filter(|c| c[0] == "pull").collect();
    assert_eq!(pulls.len(), pinned().len(), "{pulls:?}");
    // A classic repository is named with --repo, an OCI chart by its reference.
    assert!(
        pulls
            .iter()
            .all(|c| c.contains(&"--repo".to_owned()) || c[1].starts_with("oci://")),
        "{pulls:?}"
    );
    assert!(
        pulls
            .iter()
            .any(|c| c[1] == "oci://quay.io/jetstack/charts/cert-manager")
    );
    assert!(
        rig.calls().iter().all(|c| c[0] != "repo"),
        "no helm repo add"
    );
    let lock: Value = serde_json::from_slice(
        &std::fs::read(rig.home().join("charts/charts.lock.json")).expect("lock"),
    )
    .expect("lock json");
    for chart in pinned() {
        let key = format!("{}@{}", chart.name, chart.version);
        let sha = lock["charts"][&key]["sha256"].as_str().expect("recorded");
        assert!(sha.starts_with("sha256:") && sha.len() == 71, "{sha}");
        assert!(archive(&rig.home(), chart.name, chart.version).is_file());
    }

    // A second pull downloads nothing.
    let out = rig.ok(&["charts", "pull"]);
    let cached = format!("0 pulled, {} already cached", pinned().len());
    assert!(out.contains(&cached), "{out}");
    assert_eq!(
        rig.calls().iter().filter(|c| c[0] == "pull").count(),
        pinned().len()
    );
    let rows = rig.json(&["charts", "list", "-o", "json"]);
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), pinned().len());
    assert!(
        rows.iter()
            .all(|r| r["cached"] == true && r["mirrored"].is_null()),
        "{rows:?}"
    );

    // An install uses the cached archive, without pulling again.
    let store = ChartStore::new(&rig.home(), None);
    let argv = rig.install_cilium(&store).await;
    let cilium = archive(&rig.home(), "cilium", versions::CILIUM_CHART_VERSION);
    assert_eq!(argv[3], cilium.display().to_string(), "{argv:?}");
    assert_eq!(
        rig.calls().iter().filter(|c| c[0] == "pull").count(),
        pinned().len()
    );

    // A changed archive is refused, by the list and by an install.
    std::fs::write(&cilium, b"not the chart").expect("tamper");
    let out = rig.hostctl(&["charts", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("delete it and run `hostctl charts pull` again"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("CHANGED"));
    let out = rig.hostctl(&["charts", "pull"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&cilium.display().to_string()));
}

#[tokio::test]
async fn with_a_registry_mirror_charts_are_pushed_and_installed_from_it() {
    let rig = Rig::new(Some("https://192.168.64.1:8443"));
    let reports = rig.json(&["charts", "pull", "-o", "json"]);
    let reports = reports.as_array().expect("reports");
    assert_eq!(reports.len(), pinned().len());
    for r in reports {
        assert_eq!(
            r["pushed_to"], "oci://192.168.64.1:8443/hostctl-charts",
            "{r}"
        );
        assert!(
            r["mirror_digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))
        );
    }
    let pushes: Vec<Vec<String>> = rig.calls().into_iter().filter(|c| c[0] == "push").collect();
    assert_eq!(pushes.len(), pinned().len(), "{pushes:?}");
    assert_eq!(pushes[0][2], "oci://192.168.64.1:8443/hostctl-charts");
    assert_eq!(pushes[0][3..], ["--ca-file", "/etc/harbor-ca.pem"]);
    let rows = rig.json(&["charts", "list", "-o", "json"]);
    assert!(
        rows.as_array()
            .expect("rows")
            .iter()
            .all(|r| r["mirrored"] == true),
        "{rows}"
    );

    // Installs come from the mirror, with its CA; nothing is pulled or pushed again.
    let before = rig.calls().len();
    let mirror = Mirror::new(
        "https://192.168.64.1:8443",
        Some("/etc/harbor-ca.pem".into()),
    );
    let argv = rig
        .install_cilium(&ChartStore::new(&rig.home(), Some(mirror)))
        .await;
    assert_eq!(argv[3], "oci://192.168.64.1:8443/hostctl-charts/cilium");
    assert!(
        argv.windows(2)
            .any(|w| w == ["--version", versions::CILIUM_CHART_VERSION])
    );
    assert!(
        argv.windows(2)
            .any(|w| w == ["--ca-file", "/etc/harbor-ca.pem"]),
        "{argv:?}"
    );
    assert_eq!(rig.calls().len(), before + 1, "only the upgrade");
}

#[tokio::test]
async fn an_install_pulls_into_the_cache_and_without_network_says_what_to_run() {
    let rig = Rig::new(None);
    // Nothing cached, the network down: the error says what to do.
    let offline = rig.dir.path().join("helm-offline");
    std::fs::write(
        &offline,
        format!(
            "#!/bin/sh\nHELM_STANDIN_DIR='{}' HELM_STANDIN_FAIL=pull-failed exec '{STANDIN}' \"$@\"\n",
            rig.dir.path().display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(
        &offline,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let store = ChartStore::new(&rig.home(), None);
    let err = store
        .source(&HelmCli::new(&offline), &host_agent::charts::CILIUM)
        .await
        .expect_err("offline");
    let text = format!("{err}");
    assert!(
        text.contains("run `hostctl charts pull`") && text.contains("cilium@"),
        "{text}"
    );
    // Online, the first install pulls it; the cache serves it after.
    let argv = rig.install_cilium(&store).await;
    assert!(argv[3].ends_with(".tgz"), "{argv:?}");
    assert!(
        store
            .source(&HelmCli::new(&offline), &host_agent::charts::CILIUM)
            .await
            .is_ok(),
        "cached: no network needed"
    );
}
