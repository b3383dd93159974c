//! Connections to the host's mutual-TLS port, always with the node's
//! current identity.
//!
//! The report sender, the snapshot shipper and renewal each build their
//! endpoint here at every connection (never once at start), so a renewed
//! certificate is presented from the next connection on.
//!
//! This is also where "the host refuses this node's certificate" is
//! recognised and said: a revoked or expired certificate makes every call
//! fail the same way, on every retry of every task. The first refusal of an
//! episode is a warning that says what happened and what fixes it; repeats
//! are debug lines; the next success ends the episode (and says so).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::identity::{IdentityCell, NodeIdentity};
use crate::report::sender::host_endpoint;

/// TLS alerts a server sends when it rejects the client's certificate, as
/// rustls names them in the error text.
const CERTIFICATE_ALERTS: [&str; 7] = [
    "BadCertificate",
    "CertificateExpired",
    "CertificateRevoked",
    "CertificateUnknown",
    "UnsupportedCertificate",
    "UnknownCA",
    "AccessDenied",
];

/// Whether a failure means the host refused this node's certificate (and
/// not that it is unreachable): gRPC UNAUTHENTICATED (the host's answer to
/// a revoked certificate says "revoked"), or a TLS alert about the
/// certificate during the handshake.
pub fn is_certificate_refusal(code: Option<tonic::Code>, text: &str) -> bool {
    code == Some(tonic::Code::Unauthenticated)
        || text.contains("revoked")
        || (text.contains("received fatal alert")
            && CERTIFICATE_ALERTS.iter().any(|a| text.contains(a)))
}

/// The host's mutual-TLS address, the trust placed in it, and the node's
/// identity cell.
#[derive(Clone, Debug)]
pub struct HostLink {
    address: String,
    ca_pem: String,
    server_name: String,
    identity: IdentityCell,
    /// Whether the host is refusing the certificate right now (an episode
    /// is in progress), shared by every task using this link.
    refused: Arc<AtomicBool>,
}

impl HostLink {
    /// The Host service of `config`, presenting the identity in `identity`.
    pub fn new(config: &Config, identity: IdentityCell) -> Self {
        Self::to(
            &config.host.endpoint,
            &config.ca_pem,
            &config.host.server_name,
            identity,
        )
    }

    /// The host at `address` (`host:port`), whose certificate must come
    /// from `ca_pem` and carry `server_name`.
    pub fn to(address: &str, ca_pem: &str, server_name: &str, identity: IdentityCell) -> Self {
        HostLink {
            address: address.to_owned(),
            ca_pem: ca_pem.to_owned(),
            server_name: server_name.to_owned(),
            identity,
            refused: Arc::default(),
        }
    }

    /// The identity cell connections are made with.
    pub fn identity(&self) -> &IdentityCell {
        &self.identity
    }

    /// An endpoint presenting the current identity.
    pub fn endpoint(&self) -> Result<Endpoint, tonic::transport::Error> {
        self.endpoint_for(&self.identity.current())
    }

    /// An endpoint presenting `identity` (renewal authenticates with the
    /// exact identity it read, whatever happens to the cell meanwhile).
    pub fn endpoint_for(
        &self,
        identity: &NodeIdentity,
    ) -> Result<Endpoint, tonic::transport::Error> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name(self.server_name.clone())
            .identity(identity.tonic_identity());
        host_endpoint(&self.address, tls)
    }

    /// Records a failed call by `what`; returns whether it was a refusal
    /// of the certificate (logged here, once per episode).
    pub fn note_failure(&self, what: &str, code: Option<tonic::Code>, error: &str) -> bool {
        if !is_certificate_refusal(code, error) {
            return false;
        }
        let serial = self.identity.current().serial.clone();
        if self.refused.swap(true, Ordering::Relaxed) {
            debug!(what, %serial, error, "the host still refuses this node's certificate");
        } else {
            warn!(
                what,
                %serial,
                error,
                "the host refuses this node's certificate (revoked or expired): nothing reaches \
                 the host until the machine has a new identity. Give it a new enrolment token: \
                 remove the machine and recreate it with `hostctl up`, or stop the agent, remove \
                 key.pem and cert.pem from its state directory, put a new enrolmentToken in the \
                 agent config and start it again. (Repeats of this refusal are logged at debug.)"
            );
        }
        true
    }

    /// Records a successful call: ends a refusal episode.
    pub fn note_success(&self) {
        if self.refused.swap(false, Ordering::Relaxed) {
            info!("the host accepts this node's certificate again");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_refusal_is_warned_about_once_per_episode() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let spec = certs::PkiSpec {
            clusters: vec![],
            host_sans: vec!["127.0.0.1".into()],
        };
        let pki = certs::Pki::open_or_init(&dir.path().join("home"), &spec)?;
        let (key, csr) = certs::generate_node_key_and_csr("n1")?;
        let node = certs::NodeIdentitySpec {
            name: "n1".into(),
            addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            roles: vec![certs::ROLE_NODE.into()],
            validity_days: 1,
        };
        let cert = pki.sign_node_csr(&csr, &node)?;
        let id = NodeIdentity::check(&cert, &key, pki.agent_ca_pem(), "n1")?;
        let link = HostLink::to(
            "127.0.0.1:1",
            pki.agent_ca_pem(),
            "127.0.0.1",
            IdentityCell::new(id),
        );

        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let revoked = (Some(tonic::Code::Unauthenticated), "certificate revoked");
            assert!(!link.note_failure("report stream", None, "connection refused"));
            for _ in 0..3 {
                assert!(link.note_failure("report stream", revoked.0, revoked.1));
            }
            assert!(link.note_failure("snapshot upload", revoked.0, revoked.1));
            link.note_success();
            assert!(link.note_failure("report stream", revoked.0, revoked.1));
        });
        let text = String::from_utf8(out.0.lock().map_err(|_| "poisoned")?.clone())?;
        assert_eq!(
            text.matches("the host refuses this node's certificate")
                .count(),
            2,
            "{text}"
        );
        assert!(text.contains("hostctl up"), "{text}");
        assert_eq!(
            text.matches("accepts this node's certificate again")
                .count(),
            1
        );
        Ok(())
    }

    #[test]
    fn refusals_are_told_apart_from_outages() {
        assert!(is_certificate_refusal(
            Some(tonic::Code::Unauthenticated),
            "certificate revoked"
        ));
        assert!(is_certificate_refusal(
            None,
            "transport error: received fatal alert: CertificateExpired"
        ));
        assert!(!is_certificate_refusal(
            None,
            "transport error: Connection refused (os error 111)"
        ));
        assert!(!is_certificate_refusal(
            Some(tonic::Code::Unavailable),
            "connection reset"
        ));
    }
}
