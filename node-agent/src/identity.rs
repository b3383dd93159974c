//! The node's TLS identity and the trust it places in the host.
//!
//! A stored certificate is only reused when the host would still accept it:
//! issued by the pinned CA for client use, for this node, unexpired, and
//! matching the stored key. Anything else means "enrol again", which is why
//! the check is made with the same webpki verifier the host's TLS stack uses.
//! Renewed certificates pass the same check before they replace the
//! current identity in the [`IdentityCell`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{KeyPair, PublicKeyData};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use tokio::sync::watch;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

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
    /// The certificate's notAfter has passed.
    #[error("certificate expired at {not_after}")]
    Expired { not_after: String },
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
    /// When the certificate starts being valid: renewal is scheduled from
    /// it, and the host refuses certificates older than its floor for the
    /// node.
    pub not_before: SystemTime,
    /// When the certificate stops being valid.
    pub not_after: SystemTime,
    /// The certificate's serial (colon-separated hex), for logs.
    pub serial: String,
    /// The pair as rustls serves it: parsed once here, so the Node
    /// service's per-handshake lookup ([`crate::node_tls`]) is a clone of
    /// an `Arc`.
    certified: Arc<CertifiedKey>,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// Accepts the pair only if the host would accept it for `node` now.
    pub fn check(
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
        node: &str,
    ) -> Result<NodeIdentity, IdentityError> {
        Self::check_at(cert_pem, key_pem, ca_pem, node, SystemTime::now())
    }

    /// [`NodeIdentity::check`] at `now` (the agent's injectable clock, so a
    /// test can make a certificate expire without waiting a year).
    pub fn check_at(
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
        node: &str,
        now: SystemTime,
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
        let validity = x509.validity();
        let not_before = unix_time(validity.not_before.timestamp());
        let not_after = unix_time(validity.not_after.timestamp());
        // Said in so many words: this is the one failure people meet after
        // a year, and webpki's own wording is terse.
        if now > not_after {
            return Err(IdentityError::Expired {
                not_after: validity.not_after.to_string(),
            });
        }
        let at = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
        client_verifier(ca_pem)?
            .verify_client_cert(&der, &[], at)
            .map_err(|e| IdentityError::Untrusted(e.to_string()))?;
        let serial = x509.raw_serial_as_string();
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        let private = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| IdentityError::BadKey(e.to_string()))?;
        let certified = CertifiedKey::from_der(chain, private, &ring_provider())
            .map_err(|e| IdentityError::BadKey(e.to_string()))?;
        Ok(NodeIdentity {
            cert_pem: cert_pem.to_owned(),
            key_pem: Secret::new(key_pem),
            not_before,
            not_after,
            serial,
            certified: Arc::new(certified),
        })
    }

    /// The certificate and key as the Node service's TLS serves them.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.certified.clone()
    }

    pub(crate) fn tonic_identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, self.key_pem.expose())
    }
}

fn unix_time(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The node's current identity, replaced at run time by renewal.
///
/// Everything that presents the identity — the report sender, the snapshot
/// shipper, renewal itself and the Node service's TLS — reads it from here
/// at each connection or handshake instead of keeping a copy, so a renewed
/// certificate is used from the next connection on without a restart, and
/// connections already open (in-flight calls) are left alone.
#[derive(Clone)]
pub struct IdentityCell {
    tx: Arc<watch::Sender<Arc<NodeIdentity>>>,
}

impl std::fmt::Debug for IdentityCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IdentityCell")
            .field(&*self.current())
            .finish()
    }
}

impl IdentityCell {
    /// A cell holding `identity`.
    pub fn new(identity: NodeIdentity) -> Self {
        IdentityCell {
            tx: Arc::new(watch::Sender::new(Arc::new(identity))),
        }
    }

    /// The identity to use now.
    pub fn current(&self) -> Arc<NodeIdentity> {
        self.tx.borrow().clone()
    }

    /// Wakes on every change (for the long-lived report stream, which must
    /// reconnect to present a new certificate).
    pub fn subscribe(&self) -> watch::Receiver<Arc<NodeIdentity>> {
        self.tx.subscribe()
    }

    /// Replaces the identity; only renewal does this, after the new pair
    /// is stored.
    pub(crate) fn publish(&self, identity: NodeIdentity) -> Arc<NodeIdentity> {
        let identity = Arc::new(identity);
        self.tx.send_replace(identity.clone());
        identity
    }
}

pub(crate) fn client_verifier(ca_pem: &str) -> Result<Arc<dyn ClientCertVerifier>, IdentityError> {
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
