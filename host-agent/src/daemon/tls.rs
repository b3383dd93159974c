//! The server TLS configurations of the daemon. The handshakes run in
//! [`super::listener`] (under its timeout and budgets), so these are rustls
//! acceptors rather than tonic's `ServerTlsConfig`.
//!
//! - **Host** (mutual TLS): the client certificate is *required* at the
//!   handshake and must chain to the agent CA. A client without one never
//!   gets past the handshake (TLS 1.3 `certificate_required` alert), so no
//!   request reaches a handler unauthenticated.
//! - **Metrics** (mutual TLS, HTTP/1.1): as Host; [`super::authz`] then
//!   lets only the `hostctl:metrics` identity scrape.
//! - **Enrolment** (server-authenticated only): a node has no certificate
//!   yet; it checks ours against the CA pinned in its user-data and proves
//!   itself with a single-use token instead.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// gRPC runs over HTTP/2 only.
const ALPN_H2: &[u8] = b"h2";

/// The host's material could not be made into a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the {what} PEM: {source}")]
    Pem {
        what: &'static str,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the agent CA certificate is not usable as a trust anchor: {0}")]
    Anchor(#[source] rustls::Error),
    #[error("cannot build the client-certificate verifier: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("rustls refused the host identity: {0}")]
    Identity(#[source] rustls::Error),
}

/// The host's certificate and key plus the agent CA, as PEM.
#[derive(Clone)]
pub struct ServerMaterial {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

impl std::fmt::Debug for ServerMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMaterial").finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerMaterial {
    /// The host identity and agent CA of a loaded PKI.
    pub fn from_pki(pki: &certs::Pki) -> ServerMaterial {
        let host = pki.host_identity();
        ServerMaterial {
            cert_pem: host.cert_pem,
            key_pem: host.key_pem.expose().to_owned(),
            ca_pem: pki.agent_ca_pem().to_owned(),
        }
    }

    fn chain(&self) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
        CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|source| TlsSetupError::Pem {
                what: "host certificate",
                source,
            })
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|source| {
            TlsSetupError::Pem {
                what: "host key",
                source,
            }
        })
    }

    fn finish(
        &self,
        config: rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
        alpn: &[u8],
    ) -> Result<TlsAcceptor, TlsSetupError> {
        let mut config = config
            .with_single_cert(self.chain()?, self.key()?)
            .map_err(TlsSetupError::Identity)?;
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Mutual TLS: a client certificate from the agent CA is mandatory.
    pub fn host_acceptor(&self) -> Result<TlsAcceptor, TlsSetupError> {
        self.mutual(ALPN_H2)
    }

    /// The metrics endpoint's mutual TLS: as [`Self::host_acceptor`], but
    /// HTTP/1.1 (what Prometheus scrapes with); which client certificate
    /// may scrape is [`super::authz`]'s decision.
    pub fn metrics_acceptor(&self) -> Result<TlsAcceptor, TlsSetupError> {
        self.mutual(::telemetry::metrics::server::ALPN_HTTP11)
    }

    fn mutual(&self, alpn: &[u8]) -> Result<TlsAcceptor, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            let der = der.map_err(|source| TlsSetupError::Pem {
                what: "agent CA",
                source,
            })?;
            roots.add(der).map_err(TlsSetupError::Anchor)?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(TlsSetupError::Verifier)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Identity)?
            .with_client_cert_verifier(verifier);
        self.finish(builder, alpn)
    }

    /// Server-authenticated TLS only: no client certificate is requested.
    pub fn enrolment_acceptor(&self) -> Result<TlsAcceptor, TlsSetupError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Identity)?
            .with_no_client_auth();
        self.finish(builder, ALPN_H2)
    }
}
