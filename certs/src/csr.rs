//! Node enrolment: the node makes its own key and CSR (so its private key
//! never leaves the VM), and the host signs it with an identity the host
//! fixed in advance. Whatever subject, SANs or extensions the CSR asks for
//! are ignored; only its public key is used, and only after its signature
//! proves the requester holds the matching private key.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, KeyPair, SubjectPublicKeyInfo};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::error::{PkiError, crypto_err};
use crate::leaf;
use crate::material::KeyedCert;
use crate::params::LeafSpec;
use crate::pki::validate_name;

/// Node certificates may not outlive the agent CA's ten years.
pub const MAX_NODE_VALIDITY_DAYS: u32 = 3650;

/// The identity the host grants a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentitySpec {
    /// Node (VM) name; becomes the CN the host authorises by.
    pub name: String,
    /// The node's IPs; become the IP SANs (the node also serves on them).
    pub addresses: Vec<IpAddr>,
    /// Roles, one Organization attribute each, e.g. `[ROLE_NODE]`.
    pub roles: Vec<String>,
    /// Certificate lifetime in days.
    pub validity_days: u32,
}

/// Generates the node's key pair and a CSR for it, on the node. Returns
/// (private key PEM, CSR PEM). The CSR's CN is the node name only as a hint
/// for logs; the host does not trust it.
pub fn generate_node_key_and_csr(node_name: &str) -> Result<(String, String), PkiError> {
    validate_name("node name", node_name)?;
    let key = KeyPair::generate().map_err(crypto_err("generate the node key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, node_name);
    let csr = params
        .serialize_request(&key)
        .map_err(crypto_err("create the CSR"))?;
    let csr_pem = csr.pem().map_err(crypto_err("encode the CSR"))?;
    Ok((key.serialize_pem(), csr_pem))
}

fn refused(reason: impl Into<String>) -> PkiError {
    PkiError::CsrRefused {
        reason: reason.into(),
    }
}

/// Verifies `csr_pem` and issues a certificate for `node` signed by `ca`.
pub(crate) fn sign(
    ca: &KeyedCert,
    csr_pem: &str,
    node: &NodeIdentitySpec,
    not_before_at_least: Option<std::time::SystemTime>,
) -> Result<String, PkiError> {
    if !(1..=MAX_NODE_VALIDITY_DAYS).contains(&node.validity_days) {
        return Err(refused(format!(
            "validity_days must be 1..={MAX_NODE_VALIDITY_DAYS}, not {}",
            node.validity_days
        )));
    }
    let block = pem::parse(csr_pem).map_err(|e| refused(format!("not PEM: {e}")))?;
    if block.tag() != "CERTIFICATE REQUEST" {
        return Err(refused(format!(
            "PEM block is {:?}, not CERTIFICATE REQUEST",
            block.tag()
        )));
    }
    let (rest, csr) = X509CertificationRequest::from_der(block.contents())
        .map_err(|e| refused(format!("not a PKCS#10 request: {e}")))?;
    if !rest.is_empty() {
        return Err(refused("trailing bytes after the request"));
    }
    csr.verify_signature()
        .map_err(|_| refused("the request's signature does not verify (it was altered, or not signed by the key it carries)"))?;
    let public_key = SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
        .map_err(|e| refused(format!("unsupported public key: {e}")))?;

    let spec = LeafSpec {
        common_name: &node.name,
        organizations: &node.roles,
        ips: &node.addresses,
        dns_names: &[],
        server_auth: true,
        client_auth: true,
        validity: Duration::from_secs(u64::from(node.validity_days) * 86_400),
        not_before_at_least,
    };
    Ok(leaf::issue(&spec, &public_key, ca)?.0)
}
