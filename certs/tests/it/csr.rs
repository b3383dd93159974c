//! Node CSR signing: identity comes from the host, never from the request.

use crate::common;

use std::net::IpAddr;

use certs::{
    NodeIdentitySpec, PkiError, ROLE_NODE, cert_der_from_pem, common_name_of, ip_sans_of, roles_of,
};
use common::{TestResult, init, x509_text};
use rcgen::{CertificateParams, DnType, KeyPair};

fn spec() -> Result<NodeIdentitySpec, Box<dyn std::error::Error>> {
    Ok(NodeIdentitySpec {
        name: "app1-cp".into(),
        addresses: vec!["192.168.252.11".parse::<IpAddr>()?],
        roles: vec![ROLE_NODE.into()],
        validity_days: 30,
    })
}

/// A CSR that asks for more than it should get: another CN, admin role,
/// other SANs, and CA:TRUE.
fn greedy_csr() -> Result<String, Box<dyn std::error::Error>> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(vec!["10.9.9.9".to_owned(), "evil.example".to_owned()])?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "hostctl:admin");
    p.distinguished_name.push(DnType::CommonName, "app2-cp");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    Ok(p.serialize_request(&key)?.pem()?)
}

#[test]
fn csr_subject_and_sans_are_ignored() -> TestResult {
    let (home, pki) = init()?;
    let cert_pem = pki.sign_node_csr(&greedy_csr()?, &spec()?)?;
    let der = cert_der_from_pem(&cert_pem)?;
    assert_eq!(common_name_of(&der)?.as_deref(), Some("app1-cp"));
    assert_eq!(roles_of(&der)?, vec![ROLE_NODE]);
    assert_eq!(ip_sans_of(&der)?, vec!["192.168.252.11".parse::<IpAddr>()?]);
    let text = x509_text(&cert_pem)?;
    assert!(
        !text.contains("10.9.9.9") && !text.contains("evil.example"),
        "{text}"
    );
    assert!(
        !text.contains("hostctl:admin") && text.contains("CA:FALSE"),
        "{text}"
    );
    // Kept for audit under the node's name.
    let stored = std::fs::read_to_string(home.path().join("pki/agent/nodes/app1-cp.crt"))?;
    assert_eq!(stored, cert_pem);
    Ok(())
}

#[test]
fn csr_with_broken_signature_is_refused() -> TestResult {
    let (home, pki) = init()?;
    let (_, csr_pem) = certs::generate_node_key_and_csr("app1-cp")?;
    let block = pem::parse(&csr_pem)?;
    let mut der = block.contents().to_vec();
    // Flip a bit inside the subject CN ("app1-cp"): still parses, signature no longer matches.
    let pos = der
        .windows(7)
        .position(|w| w == b"app1-cp")
        .ok_or("CN not found")?;
    der[pos] ^= 0x01;
    let tampered = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
    match pki.sign_node_csr(&tampered, &spec()?) {
        Err(PkiError::CsrRefused { reason }) => assert!(reason.contains("signature"), "{reason}"),
        other => panic!("expected CsrRefused, got {other:?}"),
    }
    assert!(!home.path().join("pki/agent/nodes/app1-cp.crt").exists());
    Ok(())
}

#[test]
fn garbage_and_wrong_pem_types_are_refused() -> TestResult {
    let (_home, pki) = init()?;
    for bad in ["", "hello", pki.agent_ca_pem()] {
        assert!(
            matches!(
                pki.sign_node_csr(bad, &spec()?),
                Err(PkiError::CsrRefused { .. })
            ),
            "{bad:?}"
        );
    }
    Ok(())
}

#[test]
fn node_names_that_are_not_dns_labels_are_refused() -> TestResult {
    let (_home, pki) = init()?;
    let (_, csr) = certs::generate_node_key_and_csr("app1-cp")?;
    let bad = NodeIdentitySpec {
        name: "../../etc/passwd".into(),
        ..spec()?
    };
    assert!(matches!(
        pki.sign_node_csr(&csr, &bad),
        Err(PkiError::InvalidName { .. })
    ));
    assert!(certs::generate_node_key_and_csr("Bad Name").is_err());
    Ok(())
}

#[test]
fn out_of_range_validity_is_refused_not_a_panic() -> TestResult {
    let (_home, pki) = init()?;
    let (_, csr) = certs::generate_node_key_and_csr("app1-cp")?;
    for days in [0, certs::MAX_NODE_VALIDITY_DAYS + 1, u32::MAX] {
        let s = NodeIdentitySpec {
            validity_days: days,
            ..spec()?
        };
        assert!(
            matches!(
                pki.sign_node_csr(&csr, &s),
                Err(PkiError::CsrRefused { .. })
            ),
            "{days}"
        );
    }
    let s = NodeIdentitySpec {
        validity_days: certs::MAX_NODE_VALIDITY_DAYS,
        ..spec()?
    };
    pki.sign_node_csr(&csr, &s)?;
    Ok(())
}

#[test]
fn roles_helpers_read_host_and_admin_identities() -> TestResult {
    let (_home, pki) = init()?;
    let host = cert_der_from_pem(&pki.host_identity().cert_pem)?;
    let admin = cert_der_from_pem(&pki.admin_identity().cert_pem)?;
    assert_eq!(roles_of(&host)?, vec![certs::ROLE_HOST]);
    assert_eq!(roles_of(&admin)?, vec![certs::ROLE_ADMIN]);
    assert_eq!(common_name_of(&admin)?.as_deref(), Some("admin"));
    assert!(ip_sans_of(&admin)?.is_empty());
    Ok(())
}

#[test]
fn a_dated_certificate_starts_no_earlier_than_asked() -> TestResult {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let (_home, pki) = init()?;
    let not_before_of = |pem: &str| -> Result<u64, Box<dyn std::error::Error>> {
        let der = cert_der_from_pem(pem)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)?;
        Ok(u64::try_from(cert.validity().not_before.timestamp())?)
    };
    let (_, csr) = certs::generate_node_key_and_csr("app1-cp")?;
    // A floor a minute ago is later than the usual five minutes back.
    let floor = SystemTime::now() - Duration::from_secs(60);
    let floor_secs = floor.duration_since(UNIX_EPOCH)?.as_secs();
    let dated = pki.sign_node_csr_dated(&csr, &spec()?, Some(floor))?;
    assert_eq!(not_before_of(&dated)?, floor_secs);
    // Without one, the usual backdating applies (earlier than the floor).
    let usual = pki.sign_node_csr(&csr, &spec()?)?;
    assert!(not_before_of(&usual)? < floor_secs);
    Ok(())
}
