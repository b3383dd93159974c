//! The two server TLS configurations of the daemon.
//!
//! - **Host** (mutual TLS): the client certificate is *required* at the
//!   handshake and must chain to the agent CA. A client without one never
//!   gets past the handshake (TLS 1.3 `certificate_required` alert), so no
//!   request reaches a handler unauthenticated.
//! - **Enrolment** (server-authenticated only): a node has no certificate
//!   yet; it checks ours against the CA pinned in its user-data and proves
//!   itself with a single-use token instead.

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

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

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    /// Mutual TLS: a client certificate from the agent CA is mandatory.
    pub fn host_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .client_auth_optional(false)
    }

    /// Server-authenticated TLS only: no client certificate is requested.
    pub fn enrolment_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(self.identity())
    }
}
