//! Phase 1 of the PKI: each cluster's `lab-ca` Secret, as `up` renders it,
//! holds an intermediate of hostctl's lab root that OpenSSL verifies
//! against the root (and not against another cluster's intermediate), with
//! a key that matches it, the root as `ca.crt`, and a key of its own per
//! cluster; the review rendering carries placeholders only.

use crate::cluster_config_support::addon_objects;
use host_agent::addons::argocd::clusters::PLACEHOLDER;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use test_support::kube_api::pki;

fn secret(pki: Option<&certs::Pki>, cluster: &str) -> Value {
    addon_objects(pki, cluster, "lab-ca")
        .into_iter()
        .find(|o| o["kind"] == "Secret")
        .expect("a Secret")["stringData"]
        .clone()
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn each_clusters_issuer_ca_chains_to_the_lab_root_with_its_own_key() {
    let (_home, pki) = pki();
    let root = pki.lab_root().expect("lab root").cert_pem().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    for cluster in ["mgmt", "app1", "app2"] {
        let data = secret(Some(&pki), cluster);
        let crt = data["tls.crt"].as_str().expect("tls.crt");
        let key = data["tls.key"].as_str().expect("tls.key");
        assert_eq!(
            data["ca.crt"],
            root.as_str(),
            "{cluster}: ca.crt is the root"
        );
        // tls.crt is the chain: the intermediate, then the root.
        let intermediate = crt
            .strip_suffix(root.as_str())
            .expect("chain ends in the root");
        std::fs::write(dir.path().join("root.pem"), &root).unwrap();
        std::fs::write(dir.path().join(format!("{cluster}.pem")), intermediate).unwrap();
        std::fs::write(dir.path().join(format!("{cluster}.key")), key).unwrap();
        let (ok, text) = openssl(
            dir.path(),
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                "root.pem",
                &format!("{cluster}.pem"),
            ],
        );
        assert!(ok && text.contains(": OK"), "{cluster}: {text}");
        let (_, subject) = openssl(
            dir.path(),
            &[
                "x509",
                "-noout",
                "-subject",
                "-in",
                &format!("{cluster}.pem"),
            ],
        );
        assert!(
            subject.contains(&format!("hostctl {cluster} cert-manager CA")),
            "{subject}"
        );
        let (_, cert_pub) = openssl(
            dir.path(),
            &[
                "x509",
                "-noout",
                "-pubkey",
                "-in",
                &format!("{cluster}.pem"),
            ],
        );
        let (_, key_pub) = openssl(
            dir.path(),
            &["pkey", "-pubout", "-in", &format!("{cluster}.key")],
        );
        assert_eq!(cert_pub, key_pub, "{cluster}: key matches certificate");
        keys.push(key.to_owned());
    }
    keys.dedup();
    assert_eq!(keys.len(), 3, "every cluster has its own key");
    // One cluster's intermediate is no anchor for another's.
    let (ok, text) = openssl(
        dir.path(),
        &["verify", "-x509_strict", "-CAfile", "app1.pem", "app2.pem"],
    );
    assert!(!ok, "app2's CA verified against app1's: {text}");
}

#[test]
fn the_review_rendering_carries_placeholders_and_no_key() {
    let data = secret(None, "app1");
    for field in ["tls.crt", "tls.key", "ca.crt"] {
        assert_eq!(data[field], PLACEHOLDER, "{field}");
    }
}
