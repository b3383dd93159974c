//! The rendered layout: golden files for the default topology without a PKI
//! (placeholders; `UPDATE_GOLDEN=1` refreshes them), the real PKI's CA pin
//! and Cluster Mesh CA in a separate rendering (random keys cannot be
//! golden), and `hostctl render` itself.

use crate::cluster_config_support;

use base64::Engine;
use cluster_config_support::{default_resolved, doc_of_kind, docs};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The platform repository as the default topology's host serves it,
/// before its certificate exists.
fn platform() -> host_agent::addons::render::PlatformSource {
    host_agent::addons::render::PlatformSource::served_by_host(&default_resolved(), None)
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/default")
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.insert(rel.to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn default_topology_renders_the_golden_files() {
    let out = tempfile::tempdir().unwrap();
    host_agent::cluster_config::render_all(&default_resolved(), None, &platform(), out.path())
        .unwrap();
    let golden = golden_dir();
    let rendered = files_under(out.path());
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        for rel in &rendered {
            let target = golden.join(rel);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(out.path().join(rel), target).unwrap();
        }
    }
    assert_eq!(
        rendered,
        files_under(&golden),
        "layout differs from tests/golden/default"
    );
    for rel in &rendered {
        let got = std::fs::read_to_string(out.path().join(rel)).unwrap();
        let want = std::fs::read_to_string(golden.join(rel)).unwrap();
        assert!(
            got == want,
            "{} differs from its golden file (UPDATE_GOLDEN=1 to accept):\n{got}",
            rel.display()
        );
    }
}

#[test]
fn the_layout_is_the_documented_one() {
    let out = tempfile::tempdir().unwrap();
    host_agent::cluster_config::render_all(&default_resolved(), None, &platform(), out.path())
        .unwrap();
    let files = files_under(out.path());
    for node in [
        "mgmt-cp",
        "mgmt-worker-0",
        "app1-cp",
        "app1-worker-0",
        "app2-cp",
        "app2-worker-0",
    ] {
        assert!(
            files.contains(&PathBuf::from(format!("nodes/{node}/kubeadm.yaml"))),
            "{node}"
        );
    }
    for cluster in ["mgmt", "app1", "app2"] {
        for file in [
            "admission-config.yaml",
            "cilium-values.yaml",
            "install-plan.yaml",
            "manifests/30-metallb.yaml",
        ] {
            let rel = PathBuf::from(format!("clusters/{cluster}/{file}"));
            assert!(files.contains(&rel), "{}", rel.display());
        }
    }
}

/// A real PKI for the default topology in a temporary home.
fn pki_home() -> (tempfile::TempDir, certs::Pki) {
    let home = private_home();
    let spec = host_agent::pki::spec_for(
        &topology::default_topology()
            .resolve(None)
            .expect("resolves"),
    );
    let pki = certs::Pki::open_or_init(home.path(), &spec).unwrap();
    (home, pki)
}

/// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256`.
fn openssl_spki_sha256(cert_pem: &str) -> String {
    let run = |args: &[&str], input: &[u8]| -> Vec<u8> {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl is installed");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl {args:?} failed");
        out.stdout
    };
    let pubkey = run(&["x509", "-pubkey", "-noout"], cert_pem.as_bytes());
    let der = run(&["pkey", "-pubin", "-outform", "der"], &pubkey);
    let digest = String::from_utf8(run(&["dgst", "-sha256", "-r"], &der)).unwrap();
    digest.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn with_a_pki_the_join_pin_is_openssls_digest_of_the_rendered_ca() {
    let (_home, pki) = pki_home();
    let out = tempfile::tempdir().unwrap();
    host_agent::cluster_config::render_all(
        &default_resolved(),
        Some(&pki),
        &platform(),
        out.path(),
    )
    .unwrap();
    for (cluster, worker) in [
        ("mgmt", "mgmt-worker-0"),
        ("app1", "app1-worker-0"),
        ("app2", "app2-worker-0"),
    ] {
        let text = std::fs::read_to_string(out.path().join(format!("nodes/{worker}/kubeadm.yaml")))
            .unwrap();
        let join = doc_of_kind(&text, "JoinConfiguration");
        let pin = join["discovery"]["bootstrapToken"]["caCertHashes"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let ca_pem = pki.cluster(cluster).unwrap().ca_cert_pem().to_owned();
        assert_eq!(
            pin,
            format!("sha256:{}", openssl_spki_sha256(&ca_pem)),
            "{cluster}"
        );
        assert!(!text.contains("caCertHashes is a placeholder"));
    }
}

#[test]
fn with_a_pki_every_cluster_gets_the_shared_mesh_ca_in_a_private_file() {
    let (_home, pki) = pki_home();
    let out = tempfile::tempdir().unwrap();
    host_agent::cluster_config::render_all(
        &default_resolved(),
        Some(&pki),
        &platform(),
        out.path(),
    )
    .unwrap();
    let mesh = pki.clustermesh_ca();
    let b64 = base64::engine::general_purpose::STANDARD;
    for cluster in ["mgmt", "app1", "app2"] {
        let path = out
            .path()
            .join(format!("clusters/{cluster}/cilium-values.yaml"));
        let values = &docs(&std::fs::read_to_string(&path).unwrap())[0];
        let cert = b64
            .decode(values["tls"]["ca"]["cert"].as_str().unwrap())
            .unwrap();
        let key = b64
            .decode(values["tls"]["ca"]["key"].as_str().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(cert).unwrap(), mesh.cert_pem, "{cluster}");
        assert_eq!(
            String::from_utf8(key).unwrap(),
            mesh.key_pem.expose(),
            "{cluster}"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{cluster}: the values hold the mesh CA key");
    }
}

/// Runs `hostctl render --out <out>` with `home` as `HOSTCTL_HOME` and
/// working directory (so the default topology is used).
fn hostctl_render(home: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hostctl"))
        .args(["render", "--out"])
        .arg(out)
        .env("HOSTCTL_HOME", home)
        .env_remove("HOSTCTL_TOPOLOGY")
        .current_dir(home)
        .output()
        .unwrap()
}

#[test]
fn hostctl_render_uses_placeholders_without_a_pki_and_does_not_create_one() {
    let home = private_home();
    let out = tempfile::tempdir().unwrap();
    let result = hostctl_render(home.path(), out.path());
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("no PKI"), "{stderr}");
    assert!(
        !home.path().join("pki").exists(),
        "render must not create a PKI"
    );
    let expected = tempfile::tempdir().unwrap();
    host_agent::cluster_config::render_all(&default_resolved(), None, &platform(), expected.path())
        .unwrap();
    for rel in files_under(expected.path()) {
        let got = std::fs::read_to_string(out.path().join(&rel)).unwrap();
        let want = std::fs::read_to_string(expected.path().join(&rel)).unwrap();
        assert_eq!(got, want, "{}", rel.display());
    }
    assert!(out.path().join("topology.yaml").exists());
}

#[test]
fn hostctl_render_uses_an_existing_pki() {
    let (home, pki) = pki_home();
    let out = tempfile::tempdir().unwrap();
    let result = hostctl_render(home.path(), out.path());
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let text =
        std::fs::read_to_string(out.path().join("nodes/app1-worker-0/kubeadm.yaml")).unwrap();
    assert!(text.contains(&pki.cluster("app1").unwrap().ca_cert_hash()));
}

/// A temporary home hostctl accepts: closed to other users, as it
/// requires of every home.
fn private_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod 700");
    home
}
