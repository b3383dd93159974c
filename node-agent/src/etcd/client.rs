//! A TLS client for the node's own etcd, with the certificate kubeadm
//! creates for health checks (`pki/etcd/healthcheck-client`), so the agent
//! needs no credentials of its own: whatever can run `etcdctl endpoint
//! health` on a kubeadm control plane can take a snapshot.
//!
//! The HTTP/2 channel is built here rather than by etcd-client so its flow
//! control windows are ours: etcd sends a snapshot as fast as the window
//! allows, so the window is what the agent may have to hold when the host
//! reads slower than etcd writes. HTTP/2's usual 2 MiB per stream made the
//! agent's peak memory creep up with the snapshot's length (the longer the
//! stream, the likelier a full window); [`STREAM_WINDOW`] keeps that small.
//! etcd is on this machine, so a small window costs no throughput.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, Channel, Client, Identity, TlsOptions};
use tonic::transport::Endpoint;

use super::EtcdError;
use crate::config::rooted;

/// kubeadm's etcd CA and the client certificate the agent presents.
pub const CA: &str = "/etc/kubernetes/pki/etcd/ca.crt";
pub const CLIENT_CERT: &str = "/etc/kubernetes/pki/etcd/healthcheck-client.crt";
pub const CLIENT_KEY: &str = "/etc/kubernetes/pki/etcd/healthcheck-client.key";

/// The HTTP/2 receive window per stream, in bytes.
pub const STREAM_WINDOW: u32 = 512 * 1024;
/// The receive window of the whole connection: room for a full snapshot
/// stream and as much again, so the `Status` call made while the snapshot
/// stream is open still gets its answer (with a connection window equal
/// to the stream's, unread snapshot data could block it for good).
pub const CONNECTION_WINDOW: u32 = 2 * STREAM_WINDOW;

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
    /// Whether kubeadm has set etcd up here: it writes the health-check
    /// client certificate during `init`. Before that (and on a node of the
    /// local provider, which never runs kubeadm) there is nothing to dial.
    pub fn is_set_up(&self) -> bool {
        rooted(&self.root, CLIENT_CERT).exists()
    }

    /// Connects with mutual TLS; the key is read here and never logged.
    pub async fn connect(&self) -> Result<Client, EtcdError> {
        let channel = self.channel().await?;
        Self::client(channel).await
    }

    /// etcd-client's client on `channel` (made by [`Self::channel`]).
    pub async fn client(channel: tonic::transport::Channel) -> Result<Client, EtcdError> {
        Client::from_channel(Channel::Tonic(channel), None)
            .await
            .map_err(|source| EtcdError::Etcd {
                what: "connecting",
                source,
            })
    }

    /// The HTTP/2 channel to etcd with mutual TLS and this module's flow
    /// control windows; [`super::raw`] calls the snapshot stream on it.
    pub async fn channel(&self) -> Result<tonic::transport::Channel, EtcdError> {
        let ca = read(&rooted(&self.root, CA))?;
        let cert = read(&rooted(&self.root, CLIENT_CERT))?;
        let key = read(&rooted(&self.root, CLIENT_KEY))?;
        let tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key));
        let connecting = |source: etcd_client::Error| EtcdError::Etcd {
            what: "connecting",
            source,
        };
        let url = if self.endpoint.contains("://") {
            self.endpoint.clone()
        } else {
            format!("https://{}", self.endpoint)
        };
        Endpoint::from_shared(url)
            .and_then(|e| e.tls_config(tls))
            .map_err(|e| connecting(e.into()))?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .connect()
            .await
            .map_err(|e| connecting(e.into()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_is_set_up_once_kubeadm_wrote_its_health_check_client() {
        let root = tempfile::tempdir().unwrap();
        let target = EtcdTarget {
            endpoint: "127.0.0.1:2379".into(),
            root: root.path().to_path_buf(),
        };
        assert!(!target.is_set_up());
        let cert = rooted(root.path(), CLIENT_CERT);
        std::fs::create_dir_all(cert.parent().unwrap()).unwrap();
        std::fs::write(&cert, "x").unwrap();
        assert!(target.is_set_up());
    }
}
