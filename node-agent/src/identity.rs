//! The node's TLS identity and the trust it places in the host.
//!
//! A stored certificate is only reused when the host would still accept it:
//! issued by the pinned CA for client use, for this node, unexpired, and
//! matching the stored key. Anything else means "enrol again", which is why
//! the check is made with the same webpki verifier the host's TLS stack uses.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{KeyPair, PublicKeyData};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::{Config, Secret};

/// Why a certificate/key pair cannot serve as this node's identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The pinned CA in the configuration is unusable.
    #[error("caPem is not a usable CA certificate: {0}")]
    BadPin(String),
    /// The certificate is not PEM/DER we can read.
    #[error("certificate is unreadable: {0}")]
    BadCertificate(String),
    /// The private key is not a key we can read.
    #[error("private key is unreadable: {0}")]
    BadKey(String),
    /// The certificate's public key is not the key's.
    #[error("certificate does not match the private key")]
    KeyMismatch,
    /// The certificate names another node.
    #[error("certificate is for {found:?}, not {expected:?}")]
    WrongNode { expected: String, found: String },
    /// The pinned CA does not vouch for the certificate as a client
    /// certificate (other CA, expired, no clientAuth usage).
    #[error("certificate is not valid under the pinned CA: {0}")]
    Untrusted(String),
}

/// A usable node identity: certificate and key, checked against the pin.
#[derive(Clone)]
pub struct NodeIdentity {
    /// Certificate PEM (public).
    pub cert_pem: String,
    /// Private key PEM; never logged.
    pub key_pem: Secret,
    /// When the certificate stops being valid.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// Accepts the pair only if the host would accept it for `node`.
    pub fn check(
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
        node: &str,
    ) -> Result<NodeIdentity, IdentityError> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        let (_, x509) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| IdentityError::BadKey(e.to_string()))?;
        if x509.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(IdentityError::KeyMismatch);
        }
        let cn = x509
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default();
        if cn != node {
            return Err(IdentityError::WrongNode {
                expected: node.to_owned(),
                found: cn.to_owned(),
            });
        }
        client_verifier(ca_pem)?
            .verify_client_cert(&der, &[], UnixTime::now())
            .map_err(|e| IdentityError::Untrusted(e.to_string()))?;
        let secs = u64::try_from(x509.validity().not_after.timestamp()).unwrap_or(0);
        Ok(NodeIdentity {
            cert_pem: cert_pem.to_owned(),
            key_pem: Secret::new(key_pem),
            not_after: UNIX_EPOCH + Duration::from_secs(secs),
        })
    }

    fn tonic_identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, self.key_pem.expose())
    }
}

fn client_verifier(ca_pem: &str) -> Result<Arc<dyn ClientCertVerifier>, IdentityError> {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let der = der.map_err(|e| IdentityError::BadPin(e.to_string()))?;
        roots
            .add(der)
            .map_err(|e| IdentityError::BadPin(e.to_string()))?;
    }
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| IdentityError::BadPin(e.to_string()))
}

/// TLS towards the host: the host must present a certificate from the
/// pinned CA carrying `serverName`; `identity` is `None` only for enrolment.
pub fn host_tls(config: &Config, identity: Option<&NodeIdentity>) -> ClientTlsConfig {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&config.ca_pem))
        .domain_name(config.host.server_name.clone());
    match identity {
        Some(id) => tls.identity(id.tonic_identity()),
        None => tls,
    }
}

/// A peer that has not finished its TLS handshake with the Node service by
/// then is dropped (tonic runs handshakes concurrently, so a silent peer
/// only holds its own connection until this passes).
const NODE_SERVICE_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// TLS for the Node service: a client certificate from the pinned CA is
/// mandatory; roles are checked per call by the service.
pub fn node_service_tls(config: &Config, identity: &NodeIdentity) -> ServerTlsConfig {
    ServerTlsConfig::new()
        .identity(identity.tonic_identity())
        .client_ca_root(Certificate::from_pem(&config.ca_pem))
        .timeout(NODE_SERVICE_HANDSHAKE_TIMEOUT)
}
