//! The PKI checked by an independent peer: OpenSSL must accept every chain,
//! compute the same discovery pin, and show the EKUs, SANs and roles intended.

use crate::common;

use std::net::IpAddr;

use base64::Engine as _;
use certs::{NodeIdentitySpec, ROLE_NODE, generate_node_key_and_csr};
use common::{TestResult, assert_verifies, init, openssl, x509_text};

fn node_spec(name: &str, ip: &str) -> Result<NodeIdentitySpec, Box<dyn std::error::Error>> {
    Ok(NodeIdentitySpec {
        name: name.into(),
        addresses: vec![ip.parse::<IpAddr>()?],
        roles: vec![ROLE_NODE.into()],
        validity_days: 30,
    })
}

#[test]
fn every_ca_self_verifies_and_says_ca_true() -> TestResult {
    let (_home, pki) = init()?;
    let mut cas = vec![pki.agent_ca_pem().to_owned(), pki.clustermesh_ca().cert_pem];
    for name in pki.cluster_names() {
        for file in pki.cluster(&name)?.files() {
            if file.relative_path.ends_with("ca.crt") {
                cas.push(String::from_utf8(file.contents)?);
            }
        }
    }
    assert_eq!(cas.len(), 2 + 3 * 3, "agent, mesh, 3 clusters x 3 CAs");
    for ca in &cas {
        assert_verifies(ca, ca, None)?;
        let text = x509_text(ca)?;
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
        assert!(text.contains("Certificate Sign"), "{text}");
    }
    Ok(())
}

#[test]
fn cluster_ca_subjects_follow_kubeadm_names() -> TestResult {
    let (_home, pki) = init()?;
    let files = pki.cluster("app1")?.files();
    let subject = |rel: &str| -> Result<String, Box<dyn std::error::Error>> {
        let f = files
            .iter()
            .find(|f| f.relative_path == rel)
            .ok_or(rel.to_owned())?;
        Ok(String::from_utf8(openssl(
            &["x509", "-noout", "-subject", "-nameopt", "RFC2253"],
            &f.contents,
        )?)?)
    };
    assert_eq!(subject("ca.crt")?.trim(), "subject=CN=kubernetes");
    assert_eq!(
        subject("front-proxy-ca.crt")?.trim(),
        "subject=CN=front-proxy-ca"
    );
    assert_eq!(subject("etcd/ca.crt")?.trim(), "subject=CN=etcd-ca");
    Ok(())
}

#[test]
fn host_identity_is_server_and_client_with_requested_sans() -> TestResult {
    let (_home, pki) = init()?;
    let host = pki.host_identity();
    assert_verifies(pki.agent_ca_pem(), &host.cert_pem, Some("sslserver"))?;
    assert_verifies(pki.agent_ca_pem(), &host.cert_pem, Some("sslclient"))?;
    let text = x509_text(&host.cert_pem)?;
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{text}"
    );
    assert!(text.contains("IP Address:192.168.252.1"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    assert!(text.contains("DNS:localhost"), "{text}");
    assert!(
        text.contains("O = hostctl:host, CN = hostctl-host"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    Ok(())
}

#[test]
fn admin_identity_is_client_only() -> TestResult {
    let (_home, pki) = init()?;
    let admin = pki.admin_identity();
    assert_verifies(pki.agent_ca_pem(), &admin.cert_pem, Some("sslclient"))?;
    assert!(
        assert_verifies(pki.agent_ca_pem(), &admin.cert_pem, Some("sslserver")).is_err(),
        "admin cert must not be usable as a server certificate"
    );
    let text = x509_text(&admin.cert_pem)?;
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("TLS Web Server Authentication"), "{text}");
    assert!(text.contains("O = hostctl:admin, CN = admin"), "{text}");
    Ok(())
}

#[test]
fn node_certificate_from_own_csr_verifies_with_fixed_identity() -> TestResult {
    let (_home, pki) = init()?;
    let (key_pem, csr_pem) = generate_node_key_and_csr("app1-cp")?;
    let spec = NodeIdentitySpec {
        roles: vec![ROLE_NODE.into(), "hostctl:etcd-backup".into()],
        ..node_spec("app1-cp", "192.168.252.11")?
    };
    let cert_pem = pki.sign_node_csr(&csr_pem, &spec)?;
    assert_verifies(pki.agent_ca_pem(), &cert_pem, Some("sslserver"))?;
    assert_verifies(pki.agent_ca_pem(), &cert_pem, Some("sslclient"))?;
    let text = x509_text(&cert_pem)?;
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{text}"
    );
    assert!(text.contains("IP Address:192.168.252.11"), "{text}");
    assert!(
        text.contains("O = hostctl:node, O = hostctl:etcd-backup, CN = app1-cp"),
        "{text}"
    );

    // The certificate carries the node's own public key (key never left the node).
    let cert_pub = openssl(&["x509", "-pubkey", "-noout"], cert_pem.as_bytes())?;
    let key_pub = openssl(&["pkey", "-pubout"], key_pem.as_bytes())?;
    assert_eq!(cert_pub, key_pub);
    Ok(())
}

#[test]
fn kubeconfig_client_cert_verifies_against_cluster_ca() -> TestResult {
    let (_home, pki) = init()?;
    let cluster = pki.cluster("mgmt")?;
    let yaml =
        cluster.mint_admin_kubeconfig("mgmt", "https://192.168.252.10:6443", "hostctl-mgmt")?;
    let doc: serde_json::Value = serde_saphyr::from_str(&yaml)?;
    let b64 = |v: &serde_json::Value| -> Result<String, Box<dyn std::error::Error>> {
        let s = v.as_str().ok_or("not a string")?;
        Ok(String::from_utf8(
            base64::engine::general_purpose::STANDARD.decode(s)?,
        )?)
    };
    let cert = b64(&doc["users"][0]["user"]["client-certificate-data"])?;
    let key = b64(&doc["users"][0]["user"]["client-key-data"])?;
    let ca = b64(&doc["clusters"][0]["cluster"]["certificate-authority-data"])?;
    assert_eq!(ca, cluster.ca_cert_pem());
    assert_verifies(cluster.ca_cert_pem(), &cert, Some("sslclient"))?;
    // Not valid against another cluster's CA.
    assert!(assert_verifies(pki.cluster("app1")?.ca_cert_pem(), &cert, None).is_err());
    let text = x509_text(&cert)?;
    assert!(
        text.contains("O = kubeadm:cluster-admins, CN = kubernetes-admin"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert_eq!(
        openssl(&["x509", "-pubkey", "-noout"], cert.as_bytes())?,
        openssl(&["pkey", "-pubout"], key.as_bytes())?
    );
    Ok(())
}

/// openssl's SPKI digest: `x509 -pubkey | pkey -pubin -outform der | dgst -sha256`.
fn openssl_pin(cert_pem: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let pubkey = openssl(&["x509", "-pubkey", "-noout"], cert_pem)?;
    let der = openssl(&["pkey", "-pubin", "-outform", "der"], &pubkey)?;
    let dgst = String::from_utf8(openssl(&["dgst", "-sha256", "-r"], &der)?)?;
    let hex = dgst.split_whitespace().next().ok_or("empty dgst output")?;
    Ok(format!("sha256:{hex}"))
}

#[test]
fn discovery_hash_equals_openssl_spki_digest_for_every_cluster() -> TestResult {
    let (_home, pki) = init()?;
    let mut seen = std::collections::BTreeSet::new();
    for name in pki.cluster_names() {
        let cluster = pki.cluster(&name)?;
        let hash = cluster.ca_cert_hash();
        assert_eq!(
            hash,
            openssl_pin(cluster.ca_cert_pem().as_bytes())?,
            "cluster {name}"
        );
        assert!(hash.len() == 7 + 64 && hash.starts_with("sha256:"));
        seen.insert(hash);
    }
    assert_eq!(seen.len(), 3, "each cluster has its own CA key");
    Ok(())
}

#[test]
fn discovery_hash_matches_reference_test_vector() -> TestResult {
    let dir = std::path::Path::new("/work/shared/reference/fixtures/ca-hash-testvector");
    let ca = std::fs::read_to_string(dir.join("ca.crt"))?;
    let expected = std::fs::read_to_string(dir.join("expected-ca-cert-hash.txt"))?;
    let der = certs::cert_der_from_pem(&ca)?;
    assert_eq!(certs::spki_sha256_pin(&der)?, expected.trim());
    assert_eq!(openssl_pin(ca.as_bytes())?, expected.trim());
    Ok(())
}
