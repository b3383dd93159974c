//! A TLS client for the node's own etcd, with the certificate kubeadm
//! creates for health checks (`pki/etcd/healthcheck-client`), so the agent
//! needs no credentials of its own: whatever can run `etcdctl endpoint
//! health` on a kubeadm control plane can take a snapshot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::EtcdError;
use crate::config::rooted;

/// kubeadm's etcd CA and the client certificate the agent presents.
pub const CA: &str = "/etc/kubernetes/pki/etcd/ca.crt";
pub const CLIENT_CERT: &str = "/etc/kubernetes/pki/etcd/healthcheck-client.crt";
pub const CLIENT_KEY: &str = "/etc/kubernetes/pki/etcd/healthcheck-client.key";

/// What the agent needs to reach etcd.
#[derive(Debug, Clone)]
pub struct EtcdTarget {
    pub endpoint: String,
    pub root: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::Credentials {
        path: path.to_owned(),
        source,
    })
}

impl EtcdTarget {
    /// Connects with mutual TLS; the key is read here and never logged.
    pub async fn connect(&self) -> Result<Client, EtcdError> {
        let ca = read(&rooted(&self.root, CA))?;
        let cert = read(&rooted(&self.root, CLIENT_CERT))?;
        let key = read(&rooted(&self.root, CLIENT_KEY))?;
        let tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key));
        let options = ConnectOptions::new()
            .with_tls(tls)
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        Client::connect([self.endpoint.as_str()], Some(options))
            .await
            .map_err(|e| EtcdError::Etcd {
                what: "connecting",
                source: e,
            })
    }

    /// etcd's current revision and server version.
    pub async fn status(client: &mut Client) -> Result<(i64, String), EtcdError> {
        let status = client.status().await.map_err(|e| EtcdError::Etcd {
            what: "status",
            source: e,
        })?;
        let revision = status.header().map(|h| h.revision()).unwrap_or(0);
        Ok((revision, status.version().to_owned()))
    }
}
