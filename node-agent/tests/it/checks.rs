//! The named checks against prepared root directories.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use node_agent::exec::SystemRunner;
use node_agent::report::checks::{Checks, Endpoints};
use proto::v1::{Check, CheckStatus};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn run(root: &Path, control_plane: bool, endpoints: Endpoints) -> Vec<Check> {
    Checks::new(root, control_plane, Arc::new(SystemRunner), endpoints)
        .run()
        .checks
}

fn find<'a>(checks: &'a [Check], name: &str) -> Option<&'a Check> {
    checks.iter().find(|c| c.name == name)
}

#[test]
fn an_empty_control_plane_root_is_not_applicable_everywhere() -> TestResult {
    let root = tempfile::tempdir()?;
    let checks = run(root.path(), true, Endpoints::default());
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "containerd",
            "kubelet",
            "kubelet-healthz",
            "apiserver-readyz",
            "etcd-health",
            "cni",
            "certificates",
            "cloud-init"
        ]
    );
    for c in &checks {
        assert_eq!(c.status, CheckStatus::NotApplicable as i32, "{c:?}");
    }
    assert_eq!(
        find(&checks, "containerd").map(|c| c.message.as_str()),
        Some("no systemd")
    );
    assert_eq!(
        find(&checks, "apiserver-readyz").map(|c| c.message.as_str()),
        Some("not initialised yet")
    );
    Ok(())
}

#[test]
fn a_cloud_init_result_with_errors_fails_and_names_them() -> TestResult {
    let root = tempfile::tempdir()?;
    let dir = root.path().join("run/cloud-init");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("result.json"),
        r#"{"v1":{"datasource":"DataSourceNoCloud","errors":["('scripts_user', RuntimeError('runparts: 1 failed'))"]}}"#,
    )?;
    let checks = run(root.path(), false, Endpoints::default());
    let c = find(&checks, "cloud-init").ok_or("no cloud-init check")?;
    assert_eq!(c.status, CheckStatus::Fail as i32);
    assert!(c.message.contains("scripts_user"), "{}", c.message);

    std::fs::write(dir.join("result.json"), r#"{"v1":{"errors":[]}}"#)?;
    let checks = run(root.path(), false, Endpoints::default());
    assert_eq!(
        find(&checks, "cloud-init").map(|c| c.status),
        Some(CheckStatus::Pass as i32)
    );
    Ok(())
}

#[test]
fn a_cni_config_and_a_soon_expiring_certificate_are_seen() -> TestResult {
    let root = tempfile::tempdir()?;
    let cni = root.path().join("etc/cni/net.d");
    std::fs::create_dir_all(&cni)?;
    std::fs::write(cni.join("05-cilium.conflist"), "{}")?;
    let pki = root.path().join("etc/kubernetes/pki/etcd");
    std::fs::create_dir_all(&pki)?;
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 86_400);
    let secs = soon.duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let mut params = rcgen::CertificateParams::new(vec!["etcd".to_owned()])?;
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(secs);
    let cert = params.self_signed(&rcgen::KeyPair::generate()?)?;
    std::fs::write(pki.join("server.crt"), cert.pem())?;

    let mut checks = Checks::new(
        root.path(),
        false,
        Arc::new(SystemRunner),
        Endpoints::default(),
    );
    let results = checks.run();
    assert_eq!(
        find(&results.checks, "cni").map(|c| c.status),
        Some(CheckStatus::Pass as i32)
    );
    let certs = find(&results.checks, "certificates").ok_or("no certificates check")?;
    assert_eq!(certs.status, CheckStatus::Warn as i32, "{certs:?}");
    assert!(
        certs.message.contains("server.crt") && certs.message.contains("expires in 9 days"),
        "{}",
        certs.message
    );
    let nearest = results.nearest_cert.ok_or("no nearest expiry")?;
    assert_eq!(nearest.path, pki.join("server.crt"));
    Ok(())
}

#[test]
fn kubelet_healthz_is_probed_once_kubelet_is_configured() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir_all(root.path().join("usr/bin"))?;
    std::fs::write(root.path().join("usr/bin/kubelet"), "")?;
    let checks = run(root.path(), false, Endpoints::default());
    let c = find(&checks, "kubelet-healthz").ok_or("missing")?;
    assert_eq!(c.status, CheckStatus::NotApplicable as i32);
    assert!(c.message.contains("not configured"), "{}", c.message);

    std::fs::create_dir_all(root.path().join("etc/kubernetes"))?;
    std::fs::write(root.path().join("etc/kubernetes/kubelet.conf"), "")?;
    // Nothing listens on this port: the probe must fail, not be skipped.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let endpoints = Endpoints {
        kubelet: closed,
        ..Endpoints::default()
    };
    let checks = run(root.path(), false, endpoints);
    let c = find(&checks, "kubelet-healthz").ok_or("missing")?;
    assert_eq!(c.status, CheckStatus::Fail as i32, "{c:?}");

    let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr: SocketAddr = server.local_addr()?;
    let answer = std::thread::spawn(move || -> std::io::Result<()> {
        use std::io::{Read, Write};
        let (mut s, _) = server.accept()?;
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf)?;
        s.write_all(b"HTTP/1.1 200 OK\r\n\r\nok")
    });
    let checks = run(
        root.path(),
        false,
        Endpoints {
            kubelet: addr,
            ..Endpoints::default()
        },
    );
    answer.join().map_err(|_| "server thread panicked")??;
    assert_eq!(
        find(&checks, "kubelet-healthz").map(|c| c.status),
        Some(CheckStatus::Pass as i32)
    );
    Ok(())
}
