//! Mutual-TLS channels to a node agent's Node/Provisioning service with the
//! admin identity, the way `hostctl logs` dials: the node's certificate
//! must carry the address dialled as an IP SAN.

use crate::agent_plane::NODE_SERVICE_PORT;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A channel to a node whose every call carries the calling span's W3C
/// trace context, so the node's spans join the step's (docs/tracing.md).
pub type NodeChannel = InterceptedService<Channel, ::telemetry::InjectContext>;

/// The TLS material for dialling nodes, read once from the PKI.
#[derive(Clone)]
pub struct NodeDialer {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A node could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the node agent at {addr}")]
pub struct DialError {
    pub addr: SocketAddr,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl NodeDialer {
    pub fn new(pki: &certs::Pki) -> NodeDialer {
        let admin = pki.admin_identity();
        NodeDialer {
            ca_pem: pki.agent_ca_pem().to_owned(),
            cert_pem: admin.cert_pem,
            key_pem: admin.key_pem.expose().to_owned(),
        }
    }

    /// A channel to the node's service at `ip`.
    pub async fn dial(&self, ip: IpAddr) -> Result<NodeChannel, DialError> {
        let addr = SocketAddr::new(ip, NODE_SERVICE_PORT);
        let err = |e: Box<dyn std::error::Error + Send + Sync>| DialError { addr, source: e };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(ip.to_string());
        Channel::from_shared(format!("https://{addr}"))
            .map_err(|e| err(e.into()))?
            .tls_config(tls)
            .map_err(|e| err(e.into()))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map(|channel| InterceptedService::new(channel, ::telemetry::InjectContext))
            .map_err(|e| err(e.into()))
    }
}
