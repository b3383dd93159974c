//! What the host hands kubeadm: the pre-placed CA set, bootstrap tokens and
//! an admin kubeconfig.

use crate::common;

use std::collections::BTreeSet;

use certs::bootstrap_token;
use common::{TestResult, init, openssl};

/// `\A[a-z0-9]{6}\.[a-z0-9]{16}\z` without a regex crate.
fn is_bootstrap_token(t: &str) -> bool {
    let alnum = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match t.split_once('.') {
        Some((id, secret)) => id.len() == 6 && secret.len() == 16 && alnum(id) && alnum(secret),
        None => false,
    }
}

#[test]
fn bootstrap_tokens_match_kubeadm_pattern_and_differ() {
    assert!(
        !is_bootstrap_token("abcdef.0123456789abcdeF"),
        "self-check of the matcher"
    );
    assert!(
        !is_bootstrap_token("abcdef.0123456789abcdef\n"),
        "self-check of the matcher"
    );
    let tokens: BTreeSet<String> = (0..200).map(|_| bootstrap_token()).collect();
    assert_eq!(tokens.len(), 200);
    for t in &tokens {
        assert!(is_bootstrap_token(t), "{t:?}");
    }
    // All 36 symbols show up: the alphabet is really [a-z0-9].
    let symbols: BTreeSet<char> = tokens
        .iter()
        .flat_map(|t| t.chars())
        .filter(|c| *c != '.')
        .collect();
    assert_eq!(symbols.len(), 36);
}

#[test]
fn files_use_kubeadm_names_and_modes() -> TestResult {
    let (home, pki) = init()?;
    let files = pki.cluster("app2")?.files();
    let got: Vec<(&str, u32)> = files
        .iter()
        .map(|f| (f.relative_path.as_str(), f.mode))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ca.crt", 0o644),
            ("ca.key", 0o600),
            ("front-proxy-ca.crt", 0o644),
            ("front-proxy-ca.key", 0o600),
            ("etcd/ca.crt", 0o644),
            ("etcd/ca.key", 0o600),
            ("sa.key", 0o600),
            ("sa.pub", 0o644),
        ]
    );
    // Contents are exactly what is on disk (shippable as-is).
    let dir = home.path().join("pki/clusters/app2");
    for f in &files {
        assert_eq!(
            std::fs::read(dir.join(&f.relative_path))?,
            f.contents,
            "{}",
            f.relative_path
        );
    }
    // sa.pub is the PEM PUBLIC KEY of sa.key (openssl derives the same).
    let find = |p: &str| {
        files
            .iter()
            .find(|f| f.relative_path == p)
            .map(|f| f.contents.clone())
    };
    let sa_key = find("sa.key").ok_or("no sa.key")?;
    let sa_pub = find("sa.pub").ok_or("no sa.pub")?;
    assert!(String::from_utf8(sa_pub.clone())?.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(openssl(&["pkey", "-pubout"], &sa_key)?, sa_pub);
    // Each CA key belongs to its certificate.
    for stem in ["ca", "front-proxy-ca", "etcd/ca"] {
        let crt = find(&format!("{stem}.crt")).ok_or("no crt")?;
        let key = find(&format!("{stem}.key")).ok_or("no key")?;
        assert_eq!(
            openssl(&["x509", "-pubkey", "-noout"], &crt)?,
            openssl(&["pkey", "-pubout"], &key)?
        );
    }
    Ok(())
}

#[test]
fn admin_kubeconfig_is_a_standard_config() -> TestResult {
    let (_home, pki) = init()?;
    let yaml = pki.cluster("app1")?.mint_admin_kubeconfig(
        "app1",
        "https://192.168.252.20:6443",
        "hostctl-app1",
    )?;
    let doc: serde_json::Value = serde_saphyr::from_str(&yaml)?;
    assert_eq!(doc["apiVersion"], "v1");
    assert_eq!(doc["kind"], "Config");
    assert_eq!(doc["current-context"], "hostctl-app1");
    assert_eq!(doc["clusters"][0]["name"], "app1");
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"],
        "https://192.168.252.20:6443"
    );
    assert_eq!(doc["contexts"][0]["name"], "hostctl-app1");
    assert_eq!(doc["contexts"][0]["context"]["cluster"], "app1");
    assert_eq!(doc["contexts"][0]["context"]["user"], "app1-admin");
    assert_eq!(doc["users"][0]["name"], "app1-admin");
    for field in ["client-certificate-data", "client-key-data"] {
        assert!(
            doc["users"][0]["user"][field]
                .as_str()
                .is_some_and(|s| s.len() > 100),
            "{field}"
        );
    }
    Ok(())
}
