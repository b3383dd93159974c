//! The managed mirrors on the node: a containerd `hosts.toml` per upstream
//! registry (Harbor's `/v2/<project>` with `override_path` and the lab CA),
//! read back by real TOML parsers, and followed the way containerd follows
//! it to a real OCI registry (Debian's `docker-registry`, standing in for
//! Harbor's registry) over TLS verified with the file's `ca`; and the
//! Ubuntu archive through Nexus, the rendered `ubuntu.sources` read by
//! real apt.

use crate::prereq_steps::{Node, TestResult, inputs};
use node_agent::prereq::Inputs;
use proto::v1::PrerequisitesRequest;

/// Managed mirrors: one `hosts.toml` per upstream, read back by a real
/// TOML parser the way containerd reads it (`server`, `[host."URL"]` with
/// `capabilities`, `override_path`, `ca`), the CA placed where `ca` says;
/// dropping the mirrors removes every file again.
#[tokio::test]
async fn per_upstream_hosts_point_at_the_mirror_with_override_path_and_ca() -> TestResult {
    let node = Node::new()?;
    let ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let upstreams = [
        ("docker.io", "https://registry-1.docker.io", "dockerhub"),
        ("registry.k8s.io", "https://registry.k8s.io", "k8s"),
        ("quay.io", "https://quay.io", "quay"),
        ("ghcr.io", "https://ghcr.io", "ghcr"),
    ];
    let managed = Inputs::from_request(&PrerequisitesRequest {
        kubernetes_version: "v1.35.0".into(),
        registry_hosts: upstreams
            .iter()
            .map(|(registry, upstream, project)| proto::v1::RegistryHost {
                registry: (*registry).into(),
                upstream: (*upstream).into(),
                mirror: format!("https://10.0.0.1:8443/v2/{project}"),
                override_path: true,
            })
            .collect(),
        registry_ca_pem: ca_pem.into(),
        ..PrerequisitesRequest::default()
    })?;
    node.run(node.runner(), &managed).await.0?;
    let ca_path = "/etc/containerd/certs.d/10.0.0.1:8443/ca.crt";
    assert_eq!(node.file(ca_path)?, ca_pem);
    for (registry, upstream, project) in upstreams {
        let text = node.file(&format!("/etc/containerd/certs.d/{registry}/hosts.toml"))?;
        let doc: toml_edit::DocumentMut = text.parse()?;
        assert_eq!(doc["server"].as_str(), Some(upstream), "{text}");
        let hosts = doc["host"].as_table().ok_or("no [host] table")?;
        assert_eq!(hosts.len(), 1, "{text}");
        let (url, host) = hosts.iter().next().ok_or("no host")?;
        assert_eq!(url, format!("https://10.0.0.1:8443/v2/{project}"));
        let caps: Vec<&str> = host["capabilities"]
            .as_array()
            .ok_or("no capabilities")?
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(caps, ["pull", "resolve"]);
        assert_eq!(host["override_path"].as_bool(), Some(true), "{text}");
        assert_eq!(host["ca"].as_str(), Some(ca_path), "{text}");
    }

    node.run(node.runner(), &inputs("", "")?).await.0?;
    for (registry, _, _) in upstreams {
        let gone = format!("etc/containerd/certs.d/{registry}/hosts.toml");
        assert!(!node.root().join(&gone).exists(), "{gone} is still there");
    }
    Ok(())
}

#[test]
fn a_registry_that_is_not_a_host_name_is_refused() {
    for bad in ["../etc", "", "docker.io/x", ".hidden"] {
        let request = PrerequisitesRequest {
            kubernetes_version: "v1.35.0".into(),
            registry_hosts: vec![proto::v1::RegistryHost {
                registry: bad.into(),
                upstream: "https://u".into(),
                mirror: "https://m/v2/p".into(),
                override_path: true,
            }],
            ..PrerequisitesRequest::default()
        };
        let err = Inputs::from_request(&request).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .unwrap_or_default()
                .contains("registry_hosts"),
            "{bad:?}: {err:?}"
        );
    }
}

/// A child process killed when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// containerd's resolution as its `hosts.toml` documentation describes it
/// (docs/hosts.md: `[host."URL"]` in order, `/v2` appended unless
/// `override_path`, `ca` the file to verify the host with), done by
/// python3 with `tomllib` against the real registry: pushes an image
/// manifest into the mirror's `dockerhub/library/demo` repository (what
/// Harbor's proxy cache would hold), then resolves `docker.io/library/demo:1.0`
/// through the node's file alone and prints the manifest digest it got.
const RESOLVE: &str = r#"
import hashlib, json, ssl, sys, tomllib, urllib.request
hosts_toml, push_base, push_ca = sys.argv[1], sys.argv[2], sys.argv[3]
def req(url, ca, method="GET", data=None, headers={}):
    ctx = ssl.create_default_context(cafile=ca)
    r = urllib.request.Request(url, data=data, method=method, headers=headers)
    return urllib.request.urlopen(r, context=ctx, timeout=30)
config = b"{}"
cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
up = req(push_base + "/v2/dockerhub/library/demo/blobs/uploads/", push_ca, "POST", b"")
loc = up.headers["Location"]
loc = loc if loc.startswith("http") else push_base + loc
req(loc + ("&" if "?" in loc else "?") + "digest=" + cdigest, push_ca, "PUT", config,
    {"Content-Type": "application/octet-stream"})
mt = "application/vnd.oci.image.manifest.v1+json"
manifest = json.dumps({"schemaVersion": 2, "mediaType": mt,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": len(config)},
    "layers": []}).encode()
req(push_base + "/v2/dockerhub/library/demo/manifests/1.0", push_ca, "PUT", manifest, {"Content-Type": mt})
pushed = "sha256:" + hashlib.sha256(manifest).hexdigest()

doc = tomllib.load(open(hosts_toml, "rb"))
for url, host in doc["host"].items():
    assert "pull" in host["capabilities"] and "resolve" in host["capabilities"]
    base = url if host.get("override_path") else url + "/v2"
    got = req(base + "/library/demo/manifests/1.0", host["ca"], headers={"Accept": mt})
    body = got.read()
    print(json.dumps({"pushed": pushed, "got": "sha256:" + hashlib.sha256(body).hexdigest(),
                      "via": url, "server": doc["server"]}))
    break
"#;

#[tokio::test]
async fn a_real_registry_serves_the_upstream_image_through_the_nodes_hosts_toml() -> TestResult {
    let test = "prereq_mirrors::real_registry";
    let Some(registry) = ["docker-registry"].iter().find_map(|p| which(p)) else {
        test_support::skip::skip(
            test,
            "docker-registry is not installed (apt install docker-registry)",
        );
        return Ok(());
    };
    if which("python3").is_none() {
        test_support::skip::skip(test, "python3 is not installed");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    // The lab root and a serving certificate it signs, as hostctl issues
    // Harbor's.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test lab root");
    let ca_key = rcgen::KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let server_key = rcgen::KeyPair::generate()?;
    let mut server_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])?;
    server_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test harbor");
    let server = server_params.signed_by(&server_key, &rcgen::Issuer::new(ca_params, &ca_key))?;
    let (crt, key, ca_file) = (
        dir.path().join("s.crt"),
        dir.path().join("s.key"),
        dir.path().join("ca.crt"),
    );
    std::fs::write(&crt, server.pem())?;
    std::fs::write(&key, server_key.serialize_pem())?;
    std::fs::write(&ca_file, ca.pem())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\n\
             http:\n  addr: 127.0.0.1:{port}\n  tls: {{certificate: {}, key: {}}}\n",
            dir.path().join("data").display(),
            crt.display(),
            key.display()
        ),
    )?;
    let mut child = std::process::Command::new(registry)
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait()?.is_none(), "docker-registry exited");
        assert!(
            std::time::Instant::now() < deadline,
            "docker-registry is not listening"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _registry = Server(child);

    // The node writes its files for a mirror at the registry.
    let node = Node::new()?;
    let mirror = format!("https://127.0.0.1:{port}");
    let managed = Inputs::from_request(&PrerequisitesRequest {
        kubernetes_version: "v1.35.0".into(),
        registry_hosts: vec![proto::v1::RegistryHost {
            registry: "docker.io".into(),
            upstream: "https://registry-1.docker.io".into(),
            mirror: format!("{mirror}/v2/dockerhub"),
            override_path: true,
        }],
        registry_ca_pem: ca.pem(),
        ..PrerequisitesRequest::default()
    })?;
    node.run(node.runner(), &managed).await.0?;
    // The file's `ca` is an absolute node path: the test reads it under
    // the node's root, as containerd would read it on the node.
    let hosts = node
        .root()
        .join("etc/containerd/certs.d/docker.io/hosts.toml");
    let rooted = dir.path().join("hosts.toml");
    let text = std::fs::read_to_string(&hosts)?.replace(
        "ca = \"/etc/",
        &format!("ca = \"{}/etc/", node.root().display()),
    );
    std::fs::write(&rooted, text)?;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(RESOLVE)
        .arg(&rooted)
        .arg(&mirror)
        .arg(&ca_file)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env("NO_PROXY", "127.0.0.1")
        .output()?;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(got["pushed"], got["got"], "{got}");
    assert_eq!(got["via"], format!("{mirror}/v2/dockerhub"));
    assert_eq!(got["server"], "https://registry-1.docker.io");
    Ok(())
}

const NEXUS: &str = "http://10.0.0.1:8081/repository";

/// The image's own `ubuntu.sources` (Ubuntu 24.04 cloud images' shape).
const IMAGE_SOURCES: &str = "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\n\
    Suites: noble noble-updates noble-backports\nComponents: main restricted universe multiverse\n\
    Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n";

/// The managed request's archive and Kubernetes packages, both through
/// Nexus, on a node whose image has its own `ubuntu.sources`.
async fn node_with_the_archive_through_nexus() -> TestResult<Node> {
    let node = Node::new()?;
    let parts = node.root().join("etc/apt/sources.list.d");
    std::fs::create_dir_all(&parts)?;
    std::fs::write(parts.join("ubuntu.sources"), IMAGE_SOURCES)?;
    let managed = Inputs::from_request(&PrerequisitesRequest {
        kubernetes_version: "v1.35.0".into(),
        kubernetes_repository: format!("{NEXUS}/kubernetes-v1.35"),
        ubuntu_archive: [
            ("ubuntu", "noble"),
            ("ubuntu-updates", "noble-updates"),
            ("ubuntu-security", "noble-security"),
        ]
        .iter()
        .map(|(repo, suite)| proto::v1::AptSuite {
            url: format!("{NEXUS}/{repo}/"),
            suite: (*suite).into(),
        })
        .collect(),
        ..PrerequisitesRequest::default()
    })?;
    node.run(node.runner(), &managed).await.0?;
    let (again, events) = node.run(node.runner(), &managed).await;
    assert!(again?, "a rerun changed something");
    assert!(
        events
            .iter()
            .any(|e| e.phase == "prerequisites/ubuntu-archive" && e.message == "already done"),
        "{events:?}"
    );
    Ok(node)
}

/// The node's `ubuntu.sources` names Nexus's three suites and keeps the
/// image's file once; a request without the archive puts it back.
#[tokio::test]
async fn the_archive_comes_through_nexus_and_the_images_sources_are_kept() -> TestResult {
    let node = node_with_the_archive_through_nexus().await?;
    let ours = node.file("/etc/apt/sources.list.d/ubuntu.sources")?;
    for (repo, suite) in [
        ("ubuntu", "noble"),
        ("ubuntu-updates", "noble-updates"),
        ("ubuntu-security", "noble-security"),
    ] {
        assert!(
            ours.contains(&format!("URIs: {NEXUS}/{repo}/\nSuites: {suite}\n")),
            "{ours}"
        );
    }
    assert_eq!(
        node.file("/etc/apt/sources.list.d/ubuntu.sources.orig")?,
        IMAGE_SOURCES
    );

    node.run(node.runner(), &inputs("", "")?).await.0?;
    assert_eq!(
        node.file("/etc/apt/sources.list.d/ubuntu.sources")?,
        IMAGE_SOURCES
    );
    assert!(
        !node
            .root()
            .join("etc/apt/sources.list.d/ubuntu.sources.orig")
            .exists()
    );
    Ok(())
}

/// Real apt reads the node's sources (`sources.list.d` under the node's
/// root, its own state in a scratch directory) and prints what `update`
/// would fetch: every URI is Nexus's, each suite's `InRelease` is among
/// them, and the image's file kept as `.orig` is ignored silently.
#[tokio::test]
async fn real_apt_fetches_every_index_from_nexus() -> TestResult {
    let test = "prereq_mirrors::real_apt";
    let Some(apt_get) = which("apt-get") else {
        test_support::skip::skip(test, "apt-get is not installed");
        return Ok(());
    };
    let node = node_with_the_archive_through_nexus().await?;
    let scratch = tempfile::tempdir()?;
    for dir in ["state/lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(scratch.path().join(dir))?;
    }
    std::fs::write(scratch.path().join("status"), "")?;
    std::fs::write(scratch.path().join("apt.conf"), "")?;
    let etc = node.root().join("etc/apt");
    let option = |name: &str, path: &std::path::Path| format!("{name}={}", path.display());
    let out = std::process::Command::new(apt_get)
        .env("APT_CONFIG", scratch.path().join("apt.conf"))
        .args([
            "-o",
            &option("Dir::Etc::SourceList", &etc.join("sources.list")),
            "-o",
            &option("Dir::Etc::SourceParts", &etc.join("sources.list.d")),
            "-o",
            &option("Dir::State", &scratch.path().join("state")),
            "-o",
            &option("Dir::State::status", &scratch.path().join("status")),
            "-o",
            &option("Dir::Cache", &scratch.path().join("cache")),
            "-o",
            "Debug::NoLocking=1",
            "--print-uris",
            "update",
        ])
        .output()?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let uris: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|u| u.trim_matches('\''))
        .collect();
    assert!(!uris.is_empty(), "apt would fetch nothing: {stderr}");
    let elsewhere: Vec<&&str> = uris
        .iter()
        .filter(|u| !u.starts_with(&format!("{NEXUS}/")))
        .collect();
    assert!(elsewhere.is_empty(), "not through Nexus: {elsewhere:?}");
    for release in [
        "ubuntu/dists/noble/InRelease",
        "ubuntu-updates/dists/noble-updates/InRelease",
        "ubuntu-security/dists/noble-security/InRelease",
        "kubernetes-v1.35/InRelease",
    ] {
        let want = format!("{NEXUS}/{release}");
        assert!(uris.contains(&want.as_str()), "{want} not in {uris:?}");
    }
    for component in ["main", "restricted", "universe", "multiverse"] {
        let prefix = format!("{NEXUS}/ubuntu-security/dists/noble-security/{component}/");
        assert!(
            uris.iter().any(|u| u.starts_with(&prefix)),
            "{component}: {uris:?}"
        );
    }
    assert!(
        !stderr.contains("ubuntu.sources.orig"),
        "apt noticed the kept original: {stderr}"
    );
    Ok(())
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
}
