//! Charts through the MANAGED mirror with real helm (`$HOSTCTL_TEST_HELM`)
//! and Debian's `docker-registry` standing in for Harbor's registry on
//! Harbor's own address and port (`127.0.0.1:8443`). Everything helm is
//! given comes from hostctl's production code for `mirrors: {managed:
//! true}`: the serving certificate `mirrors up` issues from the lab root
//! (`ensure_harbor_tls`), the admin password it generates and the 0600
//! `--registry-config` it writes, and the `Mirror` the topology resolves
//! to. The registry asks for that password (htpasswd, bcrypt, as Harbor's
//! admin login would), so the push proves the file is read; helm without
//! the lab root or without the file is refused.

use crate::charts_real_helm::{demo_repository, helm_wrapper, programs, registry, template};
use host_agent::addons::{Chart, ChartRepo};
use host_agent::charts::{ChartStore, Mirror, Origin, pull_all};
use host_agent::helm::HelmCli;
use host_agent::mirrors::layout::Layout;
use host_agent::mirrors::secrets::{Credentials, ensure_harbor_tls, write_helm_registry_config};
use host_agent::mirrors::{HARBOR_PORT, lab_ca_file};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// helm's exit and combined output, for the refusals.
fn helm_fails(wrapper: &Path, args: &[&str]) -> String {
    let out = Command::new(wrapper)
        .args(args)
        .output()
        .expect("helm runs");
    assert!(!out.status.success(), "helm {args:?} succeeded");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn helm_pushes_and_pulls_through_the_managed_harbor_with_the_lab_root_and_the_admin_file() {
    let test = "charts_managed_harbor";
    let Some((real_helm, registry_bin)) = programs(test) else {
        return;
    };
    // Harbor's port is fixed by the spec; a test cannot choose another.
    if let Err(e) = TcpListener::bind((Ipv4Addr::LOCALHOST, HARBOR_PORT)) {
        panic!("127.0.0.1:{HARBOR_PORT} is in use ({e}); this test serves Harbor's port");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let wrapper = helm_wrapper(root, &real_helm);
    let (_upstream, repo_url, _repo_dir) = demo_repository(root, &wrapper);

    // What `mirrors up` leaves in a home, made by the same functions.
    let home = root.join("home");
    let spec = certs::PkiSpec {
        clusters: vec!["mgmt".into()],
        host_sans: vec!["127.0.0.1".into()],
    };
    let pki = certs::Pki::open_or_init(&home, &spec).expect("pki");
    let lab = pki.lab_root().expect("lab root");
    let layout = Layout::new(&home);
    let host = Ipv4Addr::LOCALHOST;
    ensure_harbor_tls(&layout, lab, host).expect("Harbor's certificate");
    let creds = Credentials::load_or_create(&layout).expect("credentials");
    write_helm_registry_config(
        &layout,
        &format!("{host}:{HARBOR_PORT}"),
        &creds.harbor_admin_password,
    )
    .expect("helm's registry config");
    let registry_config = layout.helm_registry_config();
    assert_eq!(
        std::fs::metadata(&registry_config)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Harbor's registry: lab-signed TLS and the admin login.
    let htpasswd = root.join("htpasswd");
    let hash = bcrypt::hash(&creds.harbor_admin_password, 5).expect("bcrypt");
    std::fs::write(&htpasswd, format!("admin:{hash}\n")).expect("htpasswd");
    let tls = layout.harbor().join("tls");
    let _harbor = registry(
        root,
        &registry_bin,
        HARBOR_PORT,
        (&tls.join("server.crt"), &tls.join("server.key")),
        Some(&htpasswd),
    );

    // The mirror a managed topology resolves to, and a pull that pushes.
    let text = format!("{}mirrors:\n  managed: true\n", topology::default_yaml());
    let topology = topology::parse(&text, "t.yaml").expect("topology").topology;
    let mirror = Mirror::from_topology(&topology, host, None, &home).expect("a managed mirror");
    assert_eq!(mirror.remote(), "oci://127.0.0.1:8443/hostctl-charts");
    let store = ChartStore::new(&home, Some(mirror));
    let chart = Chart {
        repo: ChartRepo::Http(repo_url),
        name: "demo",
        version: "0.3.0",
        digest: None,
    };
    let helm_cli = HelmCli::new(&wrapper);
    let reports = pull_all(&store, &helm_cli, &[chart], &|_| {})
        .await
        .expect("pull and push");
    let digest = reports[0].mirror_digest.clone().expect("pushed to Harbor");
    assert!(digest.starts_with("sha256:"), "{digest}");

    // Installs resolve to Harbor, with the lab root and the admin file.
    let source = store.source(&helm_cli, &chart).await.expect("source");
    let reference = "oci://127.0.0.1:8443/hostctl-charts/demo";
    assert_eq!(
        (&source.origin, source.reference.as_str()),
        (&Origin::Mirror, reference)
    );
    assert!(template(&wrapper, &source).contains("kind: Deployment"));
    let ca = lab_ca_file(&home);
    assert_eq!(
        source.registry.argv(),
        [
            "--ca-file".into(),
            ca.clone().into_os_string(),
            "--registry-config".into(),
            registry_config.clone().into_os_string(),
        ]
    );

    // Refused without the admin file (no login) and without the lab root.
    let ca_arg = ca.display().to_string();
    let config_arg = registry_config.display().to_string();
    let show = ["show", "chart", reference, "--version", "0.3.0"];
    let anonymous = helm_fails(&wrapper, &[&show[..], &["--ca-file", &ca_arg]].concat());
    // helm 4 says "basic credential not found" on the registry's 401.
    let lower = anonymous.to_lowercase();
    assert!(
        ["401", "unauthorized", "credential"]
            .iter()
            .any(|w| lower.contains(w)),
        "{anonymous}"
    );
    let untrusted = helm_fails(
        &wrapper,
        &[&show[..], &["--registry-config", &config_arg]].concat(),
    );
    assert!(
        untrusted.contains("certificate") || untrusted.contains("x509"),
        "{untrusted}"
    );
}
