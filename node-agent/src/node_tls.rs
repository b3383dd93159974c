//! TLS of the Node service, with a certificate that can change at run time.
//!
//! tonic's `ServerTlsConfig` fixes the server certificate when the server
//! starts, so a renewed certificate would only be served after a restart.
//! Here the handshake is done with tokio-rustls instead and the server
//! certificate is looked up in the [`IdentityCell`] at every handshake
//! ([`CellResolver`]): a new connection gets the current certificate,
//! connections already open — calls in flight, a `Logs` follow — keep
//! theirs. tonic is handed finished `TlsStream<TcpStream>`s, whose connect
//! info still carries the peer certificates, so `Request::peer_certs` (and
//! the role check in [`crate::service::authorise`]) work as before.
//!
//! What tonic's TLS did is kept: a client certificate from the pinned CA is
//! mandatory (webpki client verifier), ALPN `h2`, a handshake timeout per
//! connection, and handshakes run concurrently — each in its own task — so
//! a peer that connects and says nothing only holds its own connection.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

use crate::identity::{self, IdentityCell, IdentityError};

/// A peer that has not finished its TLS handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once; a connection beyond that is closed at
/// once (the callers are the host and administrators: a handful, so this
/// only bounds what unauthenticated peers can make the agent hold).
pub const MAX_HANDSHAKES: usize = 64;

/// Serves the certificate in the cell at each handshake.
#[derive(Debug)]
pub struct CellResolver {
    cell: IdentityCell,
}

impl ResolvesServerCert for CellResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.cell.current().certified_key())
    }
}

/// The Node service's TLS configuration: the current identity as server
/// certificate, a client certificate from `ca_pem` required.
pub fn server_config(ca_pem: &str, cell: IdentityCell) -> Result<ServerConfig, IdentityError> {
    let verifier = identity::client_verifier(ca_pem)?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| IdentityError::BadPin(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(CellResolver { cell }));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Accepts on `listener` and yields the connections whose handshake
/// finished within [`HANDSHAKE_TIMEOUT`]. Stops accepting (and releases
/// the port) once the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: ServerConfig,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (tx, rx) = mpsc::channel(16);
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // e.g. out of descriptors: not a reason to stop serving.
                    warn!("Node service: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                debug!(%peer, "Node service: too many TLS handshakes in flight; connection closed");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                drop(permit);
                match done {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => debug!(%peer, "Node service: TLS handshake failed: {e}"),
                    Err(_) => debug!(%peer, "Node service: TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
