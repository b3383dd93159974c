//! On-disk behaviour: modes, byte-for-byte reuse, and clear errors for
//! damaged, mismatched or world-readable files.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use certs::{Pki, PkiError, PkiSpec};
use common::{TestResult, assert_verifies, fingerprint, init, spec, walk, x509_text};

fn mode(path: &std::path::Path) -> Result<u32, std::io::Error> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o777)
}

#[test]
fn layout_and_modes() -> TestResult {
    let (home, _pki) = init()?;
    let root = home.path().join("pki");
    for rel in [
        "agent/ca.crt",
        "agent/ca.key",
        "agent/host.crt",
        "agent/host.key",
        "agent/admin.crt",
        "agent/admin.key",
        "clustermesh/ca.crt",
        "clustermesh/ca.key",
        "lab/ca.crt",
        "lab/ca.key",
        "clusters/app1/ca.crt",
        "clusters/app1/ca.key",
        "clusters/app1/front-proxy-ca.crt",
        "clusters/app1/front-proxy-ca.key",
        "clusters/app1/etcd/ca.crt",
        "clusters/app1/etcd/ca.key",
        "clusters/app1/sa.key",
        "clusters/app1/sa.pub",
    ] {
        assert!(root.join(rel).is_file(), "missing {rel}");
    }
    let mut keys = 0;
    for path in walk(&root)? {
        let name = path.to_string_lossy();
        let want = if path.is_dir() {
            0o700
        } else if name.ends_with(".key") {
            keys += 1;
            0o600
        } else {
            0o644
        };
        assert_eq!(mode(&path)?, want, "{name}");
    }
    assert_eq!(
        keys,
        3 + 1 + 1 + 3 * 4,
        "agent ca/host/admin, mesh, lab root, 4 per cluster"
    );
    Ok(())
}

#[test]
fn second_open_reuses_every_file_byte_for_byte() -> TestResult {
    let (home, first) = init()?;
    let before = fingerprint(&home.path().join("pki"))?;
    let second = Pki::open_or_init(home.path(), &spec())?;
    let third = Pki::open(home.path())?;
    assert_eq!(before, fingerprint(&home.path().join("pki"))?);
    assert_eq!(first.host_identity(), second.host_identity());
    assert_eq!(first.host_identity(), third.host_identity());
    assert_eq!(
        first.cluster("app2")?.ca_cert_hash(),
        third.cluster("app2")?.ca_cert_hash()
    );
    assert_eq!(
        first.cluster("app2")?.files(),
        third.cluster("app2")?.files()
    );
    Ok(())
}

#[test]
fn adding_a_cluster_creates_only_its_cas() -> TestResult {
    let home = tempfile::tempdir()?;
    let mut s = spec();
    s.clusters = vec!["mgmt".into()];
    Pki::open_or_init(home.path(), &s)?;
    let before = fingerprint(&home.path().join("pki"))?;
    s.clusters.push("app1".into());
    let pki = Pki::open_or_init(home.path(), &s)?;
    let after = fingerprint(&home.path().join("pki"))?;
    for (path, digest) in &before {
        assert_eq!(after.get(path), Some(digest), "{} changed", path.display());
    }
    let added: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    assert_eq!(added.len(), 8, "{added:?}");
    assert!(
        added.iter().all(|p| p.starts_with("clusters/app1")),
        "{added:?}"
    );
    // A spec without the cluster still loads the cluster that exists.
    s.clusters.clear();
    assert_eq!(
        Pki::open_or_init(home.path(), &s)?.cluster_names(),
        vec!["app1", "mgmt"]
    );
    assert!(matches!(
        pki.cluster("nope"),
        Err(PkiError::UnknownCluster { .. })
    ));
    Ok(())
}

#[test]
fn open_without_pki_says_to_run_up() -> TestResult {
    let home = tempfile::tempdir()?;
    let err = Pki::open(home.path())
        .err()
        .ok_or("open succeeded on an empty home")?;
    assert!(matches!(err, PkiError::NotInitialised { .. }), "{err:?}");
    assert!(err.to_string().contains("hostctl up"), "{err}");
    assert!(
        !home.path().join("pki").exists(),
        "open must not create anything"
    );
    Ok(())
}

#[test]
fn truncated_key_is_a_clear_error_naming_the_file() -> TestResult {
    let (home, _pki) = init()?;
    let key = home.path().join("pki/agent/ca.key");
    let text = fs::read(&key)?;
    fs::write(&key, &text[..text.len() / 2])?;
    let err = Pki::open_or_init(home.path(), &spec())
        .err()
        .ok_or("damaged key accepted")?;
    assert!(
        matches!(err, PkiError::Damaged { ref path, .. } if *path == key),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&key.display().to_string()) && msg.contains("truncated"),
        "{msg}"
    );
    assert!(msg.contains("enrol again"), "fix missing: {msg}");
    // And nothing was regenerated behind the user's back.
    assert_eq!(fs::read(&key)?, &text[..text.len() / 2]);
    Ok(())
}

#[test]
fn truncated_cluster_cert_is_a_clear_error() -> TestResult {
    let (home, _pki) = init()?;
    let cert = home.path().join("pki/clusters/app2/etcd/ca.crt");
    let text = fs::read(&cert)?;
    fs::write(&cert, &text[..40])?;
    let err = Pki::open(home.path())
        .err()
        .ok_or("damaged cert accepted")?;
    assert!(
        matches!(err, PkiError::Damaged { ref path, .. } if *path == cert),
        "{err:?}"
    );
    assert!(err.to_string().contains("clusters/app2"), "{err}");
    Ok(())
}

#[test]
fn key_of_another_ca_is_a_mismatch() -> TestResult {
    let (home, _pki) = init()?;
    let pki_dir = home.path().join("pki");
    fs::copy(
        pki_dir.join("clusters/mgmt/ca.key"),
        pki_dir.join("clusters/app1/ca.key"),
    )?;
    let err = Pki::open_or_init(home.path(), &spec())
        .err()
        .ok_or("mismatched key accepted")?;
    match &err {
        PkiError::KeyMismatch {
            key_path,
            cert_path,
            ..
        } => {
            assert_eq!(key_path, &pki_dir.join("clusters/app1/ca.key"));
            assert_eq!(cert_path, &pki_dir.join("clusters/app1/ca.crt"));
        }
        other => panic!("expected KeyMismatch, got {other:?}"),
    }
    Ok(())
}

#[test]
fn mismatched_sa_pub_is_refused() -> TestResult {
    let (home, _pki) = init()?;
    let pki_dir = home.path().join("pki");
    fs::copy(
        pki_dir.join("clusters/mgmt/sa.pub"),
        pki_dir.join("clusters/app1/sa.pub"),
    )?;
    let err = Pki::open(home.path())
        .err()
        .ok_or("mismatched sa.pub accepted")?;
    assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err:?}");
    Ok(())
}

#[test]
fn leaf_from_another_pki_is_refused() -> TestResult {
    let (home_a, _a) = init()?;
    let (home_b, _b) = init()?;
    for ext in ["crt", "key"] {
        fs::copy(
            home_b.path().join(format!("pki/agent/host.{ext}")),
            home_a.path().join(format!("pki/agent/host.{ext}")),
        )?;
    }
    let err = Pki::open(home_a.path())
        .err()
        .ok_or("foreign host cert accepted")?;
    assert!(matches!(err, PkiError::WrongIssuer { .. }), "{err:?}");
    Ok(())
}

#[test]
fn world_readable_key_is_refused_with_chmod_fix() -> TestResult {
    let (home, _pki) = init()?;
    let key = home.path().join("pki/agent/admin.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644))?;
    let err = Pki::open(home.path()).err().ok_or("0644 key accepted")?;
    assert!(
        matches!(err, PkiError::Permissions { mode: 0o644, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("chmod 600 {}", key.display())),
        "{err}"
    );
    Ok(())
}

#[test]
fn loose_directory_is_refused() -> TestResult {
    let (home, _pki) = init()?;
    let dir = home.path().join("pki/clusters/mgmt");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    let err = Pki::open_or_init(home.path(), &spec())
        .err()
        .ok_or("0755 dir accepted")?;
    assert!(
        err.to_string()
            .contains(&format!("chmod 700 {}", dir.display())),
        "{err}"
    );
    Ok(())
}

#[test]
fn half_a_pair_is_not_silently_completed() -> TestResult {
    let (home, _pki) = init()?;
    let cert = home.path().join("pki/clustermesh/ca.crt");
    fs::remove_file(&cert)?;
    let err = Pki::open_or_init(home.path(), &spec())
        .err()
        .ok_or("half pair accepted")?;
    assert!(
        matches!(err, PkiError::Incomplete { ref missing, .. } if *missing == cert),
        "{err:?}"
    );
    assert!(!cert.exists());
    Ok(())
}

#[test]
fn changed_host_sans_reissue_the_host_leaf_from_the_same_ca() -> TestResult {
    let (home, pki) = init()?;
    assert!(
        pki.host_reissued().is_none(),
        "a first open issues, not re-issues"
    );
    let ca_before = fs::read(home.path().join("pki/agent/ca.crt"))?;
    let key_before = fs::read(home.path().join("pki/agent/ca.key"))?;
    let leaf_before = fs::read(home.path().join("pki/agent/host.crt"))?;
    // Same SANs in another order are the same request: nothing changes.
    let mut reordered = spec();
    reordered.host_sans.reverse();
    let same = Pki::open_or_init(home.path(), &reordered)?;
    assert!(same.host_reissued().is_none());
    assert_eq!(
        leaf_before,
        fs::read(home.path().join("pki/agent/host.crt"))?
    );
    // The provider's subnet moved: the leaf names the new address.
    let moved = PkiSpec {
        host_sans: vec!["192.168.64.1".into(), "127.0.0.1".into()],
        ..spec()
    };
    let pki = Pki::open_or_init(home.path(), &moved)?;
    let change = pki.host_reissued().ok_or("SAN change ignored")?.clone();
    assert_eq!(
        change.after,
        vec!["127.0.0.1".to_owned(), "192.168.64.1".to_owned()]
    );
    assert_ne!(change.before, change.after);
    assert!(
        change.to_string().contains("agent CA is unchanged"),
        "{change}"
    );
    assert_eq!(ca_before, fs::read(home.path().join("pki/agent/ca.crt"))?);
    assert_eq!(key_before, fs::read(home.path().join("pki/agent/ca.key"))?);
    let leaf_after = fs::read(home.path().join("pki/agent/host.crt"))?;
    assert_ne!(leaf_before, leaf_after);
    let leaf_pem = String::from_utf8(leaf_after.clone())?;
    let text = x509_text(&leaf_pem)?;
    assert!(text.contains("IP Address:192.168.64.1"), "{text}");
    assert!(!text.contains("192.168.252.1"), "{text}");
    assert_verifies(pki.agent_ca_pem(), &leaf_pem, Some("sslserver"))?;
    // A second open with the new names is stable.
    let again = Pki::open_or_init(home.path(), &moved)?;
    assert!(again.host_reissued().is_none());
    assert_eq!(
        leaf_after,
        fs::read(home.path().join("pki/agent/host.crt"))?
    );
    Ok(())
}

#[test]
fn bad_names_and_sans_are_refused_before_touching_disk() -> TestResult {
    let home = tempfile::tempdir()?;
    for (clusters, sans) in [
        (vec!["../etc".to_owned()], vec![]),
        (vec!["App1".to_owned()], vec![]),
        (vec![], vec!["not a host!".to_owned()]),
    ] {
        let s = PkiSpec {
            clusters,
            host_sans: sans,
        };
        assert!(Pki::open_or_init(home.path(), &s).is_err(), "{s:?}");
    }
    assert!(!home.path().join("pki").exists());
    Ok(())
}

#[test]
fn inventory_lists_every_certificate() -> TestResult {
    let (home, pki) = init()?;
    let (_, csr) = certs::generate_node_key_and_csr("app2-w1")?;
    pki.sign_node_csr(
        &csr,
        &certs::NodeIdentitySpec {
            name: "app2-w1".into(),
            addresses: vec!["192.168.252.22".parse()?],
            roles: vec![certs::ROLE_NODE.into()],
            validity_days: 7,
        },
    )?;
    let inv = pki.inventory()?;
    let crt_files = walk(&home.path().join("pki"))?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "crt"))
        .count();
    assert_eq!(inv.len(), crt_files);
    assert_eq!(inv.len(), 3 + 1 + 1 + 3 * 3 + 1);
    let node = inv
        .iter()
        .find(|c| c.path.ends_with("agent/nodes/app2-w1.crt"))
        .ok_or("node cert not listed")?;
    assert_eq!(node.roles, vec![certs::ROLE_NODE]);
    assert!(node.subject.contains("CN=app2-w1"), "{}", node.subject);
    assert!(
        node.issuer.contains("CN=hostctl agent CA"),
        "{}",
        node.issuer
    );
    assert!(!node.is_ca);
    let agent_ca = inv
        .iter()
        .find(|c| c.path.ends_with("agent/ca.crt"))
        .ok_or("no agent ca")?;
    assert!(agent_ca.is_ca);
    let year: i32 = agent_ca.not_after[..4].parse()?;
    assert!(year >= 2035, "{}", agent_ca.not_after);
    assert!(agent_ca.not_after.ends_with('Z') && agent_ca.not_after.len() == 20);
    let json = serde_json::to_value(&inv)?;
    assert!(json[0]["path"].is_string() && json[0]["roles"].is_array());
    Ok(())
}

#[test]
fn keys_never_appear_in_debug_output() -> TestResult {
    let (_home, pki) = init()?;
    let id = pki.admin_identity();
    let key_body = id
        .key_pem
        .expose()
        .lines()
        .nth(1)
        .ok_or("empty key")?
        .to_owned();
    let debug = format!(
        "{id:?} {pki:?} {:?} {:?}",
        pki.cluster("mgmt")?,
        pki.cluster("mgmt")?.files()
    );
    assert!(!debug.contains(&key_body), "key material in Debug output");
    assert!(debug.contains("[redacted]"));
    Ok(())
}

#[test]
fn the_metrics_scraper_identity_is_made_once_client_only_with_its_role() -> TestResult {
    let (home, pki) = init()?;
    let first = pki.metrics_scraper_identity()?;
    let again = Pki::open(home.path())?.metrics_scraper_identity()?;
    assert_eq!(first, again, "made again instead of reused");
    let der = certs::cert_der_from_pem(&first.cert_pem)?;
    assert_eq!(
        certs::common_name_of(&der)?.as_deref(),
        Some(certs::METRICS_SCRAPER_CN)
    );
    assert_eq!(certs::roles_of(&der)?, vec![certs::ROLE_METRICS.to_owned()]);
    let key = home.path().join("pki/agent/metrics-scraper.key");
    assert_eq!(mode(&key)?, 0o600);
    assert!(x509_text(&first.cert_pem)?.contains("TLS Web Client Authentication"));
    Ok(())
}
