//! The chart cache with REAL helm (`$HOSTCTL_TEST_HELM`; `.ci/run` unpacks
//! a pinned helm 4) against real servers on loopback: the "upstream" is a
//! classic chart repository (`helm package` + `helm repo index`, served by
//! python's http.server), the registry mirror is Debian's
//! `docker-registry` (distribution 2.8) over TLS with a certificate made
//! here. `charts::pull_all` is given that chart instead of the pinned
//! list (the pinned charts are on the internet).

use host_agent::addons::{Chart, ChartRepo};
use host_agent::charts::{ChartStore, Mirror, Origin, pull_all};
use host_agent::helm::HelmCli;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::skip::skip;

/// A child process killed when the test ends, however it ends.
pub(crate) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Bounded wait for a listener on `port` (servers start in well under a second).
pub(crate) fn wait_listening(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} is not listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs real helm with `args` in its isolated homes; panics on failure.
pub(crate) fn helm(wrapper: &Path, args: &[&str]) -> String {
    let out = Command::new(wrapper)
        .args(args)
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm template demo` of what an install hands helm for `source` (its
/// reference and registry flags): renders as `upgrade --install` would,
/// without a cluster.
pub(crate) fn template(wrapper: &Path, source: &host_agent::charts::ChartSource) -> String {
    let mut args: Vec<String> = ["template", "demo", &source.reference, "--version", "0.3.0"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(
        source
            .registry
            .argv()
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    helm(wrapper, &arg_refs)
}

/// Which programs this test needs, or why it cannot run.
pub(crate) fn programs(test: &str) -> Option<(PathBuf, PathBuf)> {
    let Some(helm) = std::env::var_os("HOSTCTL_TEST_HELM").map(PathBuf::from) else {
        skip(
            test,
            "HOSTCTL_TEST_HELM is not set (.ci/run unpacks a pinned helm 4)",
        );
        return None;
    };
    let Some(registry) = host_agent::exec::find_program("docker-registry") else {
        skip(
            test,
            "docker-registry is not installed (apt install docker-registry)",
        );
        return None;
    };
    if host_agent::exec::find_program("python3").is_none() {
        skip(test, "python3 is not installed");
        return None;
    }
    Some((helm, registry))
}

#[tokio::test]
async fn real_helm_pulls_into_the_cache_pushes_to_a_real_registry_and_installs_from_both() {
    let test = "charts_real_helm";
    let Some((real_helm, registry_bin)) = programs(test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();

    let wrapper = helm_wrapper(root, &real_helm);

    let (upstream, repo_url, repo_dir) = demo_repository(root, &wrapper);

    // The mirror: docker-registry over TLS, its certificate made here.
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let (ca, key) = (root.join("mirror-ca.pem"), root.join("mirror-key.pem"));
    std::fs::write(&ca, cert.cert.pem()).expect("cert");
    std::fs::write(&key, cert.signing_key.serialize_pem()).expect("key");
    let registry_port = free_port();
    let _registry = registry(root, &registry_bin, registry_port, (&ca, &key), None);

    // `charts pull` with a mirror: cached, recorded, pushed.
    let chart = Chart {
        repo: ChartRepo::Http(repo_url),
        name: "demo",
        version: "0.3.0",
        digest: None,
    };
    let home = root.join("home");
    let mirror_url = format!("https://127.0.0.1:{registry_port}");
    let store = ChartStore::new(&home, Some(Mirror::new(&mirror_url, Some(ca.clone()))));
    let helm_cli = HelmCli::new(&wrapper);
    let said = std::sync::Mutex::new(Vec::<String>::new());
    let say = |t: &str| said.lock().expect("said").push(t.to_owned());
    let reports = pull_all(&store, &helm_cli, &[chart], &say)
        .await
        .expect("pull");
    assert_eq!(reports[0].action, "pulled", "{reports:?}");
    let cached = home.join("charts/demo-0.3.0.tgz");
    let bytes = std::fs::read(&cached).expect("cached archive");
    assert_eq!(
        bytes,
        std::fs::read(repo_dir.join("demo-0.3.0.tgz")).expect("upstream archive")
    );
    let sha = host_agent::charts::lock::sha256(&bytes);
    let lock = store.cache().lock().expect("lock");
    let entry = lock.entry(&chart).expect("recorded");
    assert_eq!(entry.sha256, sha);
    assert_eq!(reports[0].sha256, sha);
    let remote = format!("oci://127.0.0.1:{registry_port}/hostctl-charts");
    let digest = reports[0].mirror_digest.clone().expect("pushed");
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(entry.mirrored.get(&remote), Some(&digest));

    // The mirror serves it back, byte for byte.
    let reference = format!("{remote}/demo");
    let ca_arg = ca.display().to_string();
    let shown = helm(
        &wrapper,
        &[
            "show",
            "chart",
            &reference,
            "--version",
            "0.3.0",
            "--ca-file",
            &ca_arg,
        ],
    );
    assert!(
        shown.contains("name: demo") && shown.contains("version: 0.3.0"),
        "{shown}"
    );
    let back = root.join("back");
    std::fs::create_dir(&back).expect("mkdir");
    helm(
        &wrapper,
        &[
            "pull",
            &reference,
            "--version",
            "0.3.0",
            "--destination",
            &back.display().to_string(),
            "--ca-file",
            &ca_arg,
        ],
    );
    assert_eq!(
        std::fs::read(back.join("demo-0.3.0.tgz")).expect("pulled back"),
        bytes
    );

    // The upstream gone: a second pull downloads nothing and pushes the
    // same artifact again; installs resolve to the mirror.
    drop(upstream);
    let again = pull_all(&store, &helm_cli, &[chart], &say)
        .await
        .expect("offline pull");
    assert_eq!(again[0].action, "cached");
    assert_eq!(again[0].mirror_digest.as_deref(), Some(digest.as_str()));
    let source = store.source(&helm_cli, &chart).await.expect("source");
    assert_eq!(
        (&source.origin, source.reference.as_str()),
        (&Origin::Mirror, reference.as_str())
    );
    // What an install hands helm works with real helm (`template` renders
    // as `upgrade --install` would, without a cluster).
    assert!(template(&wrapper, &source).contains("kind: Deployment"));

    // Without a mirror, from the cached archive (no network at all).
    let local = ChartStore::new(&home, None);
    let source = local
        .source(&helm_cli, &chart)
        .await
        .expect("cached source");
    assert_eq!(
        (source.origin, source.reference.clone()),
        (Origin::Cache, cached.display().to_string())
    );
    let rendered = helm(
        &wrapper,
        &["template", "demo", &source.reference, "--version", "0.3.0"],
    );
    assert!(rendered.contains("kind: Deployment"));
    let said = said.lock().expect("said").join("\n");
    assert!(
        said.contains("demo@0.3.0 pulled") && said.contains("demo@0.3.0 cached"),
        "{said}"
    );
    assert!(said.contains(&format!("pushed to {reference}")), "{said}");
}

/// helm with homes of its own under `root`, and no proxy between it and
/// loopback.
pub(crate) fn helm_wrapper(root: &Path, real_helm: &Path) -> PathBuf {
    let wrapper = root.join("helm");
    std::fs::write(
    &wrapper,
    format!(
        "#!/bin/sh\nexport HELM_CONFIG_HOME='{r}/helm-config' HELM_CACHE_HOME='{r}/helm-cache' HELM_DATA_HOME='{r}/helm-data'\n\
         unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy\nexec '{}' \"$@\"\n",
        real_helm.display(),
        r = root.display()
    ),
)
.expect("wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let version = helm(&wrapper, &["version", "--short"]);
    assert!(version.starts_with('v'), "{version}");

    wrapper
}

/// The "upstream": a classic chart repository with one chart, `demo`
/// 0.3.0, served by python's http.server on loopback.
pub(crate) fn demo_repository(root: &Path, wrapper: &Path) -> (Server, &'static str, PathBuf) {
    let (repo_dir, repo_port) = (root.join("repo"), free_port());
    std::fs::create_dir(&repo_dir).expect("mkdir");
    let repo_url: &'static str =
        Box::leak(format!("http://127.0.0.1:{repo_port}").into_boxed_str());
    helm(
        wrapper,
        &["create", &root.join("demo").display().to_string()],
    );
    helm(
        wrapper,
        &[
            "package",
            &root.join("demo").display().to_string(),
            "--version",
            "0.3.0",
            "-d",
            &repo_dir.display().to_string(),
        ],
    );
    helm(
        wrapper,
        &[
            "repo",
            "index",
            &repo_dir.display().to_string(),
            "--url",
            repo_url,
        ],
    );
    let mut child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &repo_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&repo_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 http.server");
    wait_listening(repo_port, "the chart repository", &mut child);
    (Server(child), repo_url, repo_dir)
}

/// Debian's docker-registry on `127.0.0.1:port` over TLS with `tls`
/// (certificate, key), and basic authentication from an htpasswd file
/// when `htpasswd` is given.
pub(crate) fn registry(
    root: &Path,
    bin: &Path,
    port: u16,
    tls: (&Path, &Path),
    htpasswd: Option<&Path>,
) -> Server {
    let config = root.join(format!("registry-{port}.yml"));
    let auth = htpasswd.map_or_else(String::new, |file| {
        format!(
            "auth:\n  htpasswd:\n    realm: hostctl-test\n    path: {}\n",
            file.display()
        )
    });
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\n\
             http:\n  addr: 127.0.0.1:{port}\n  tls: {{certificate: {}, key: {}}}\n{auth}",
            root.join(format!("registry-data-{port}")).display(),
            tls.0.display(),
            tls.1.display()
        ),
    )
    .expect("registry config");
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry");
    wait_listening(port, "docker-registry", &mut child);
    Server(child)
}
