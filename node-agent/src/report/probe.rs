//! A minimal HTTP(S) GET for local health endpoints.
//!
//! kubelet, the API server and etcd each expose a one-word health endpoint
//! on 127.0.0.1. A full HTTP client would be most of the agent's size and
//! memory; an HTTP/1.0 request over a blocking socket with a deadline (run
//! on the blocking pool with the rest of a collection) is all it takes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Longest a probe may take; a health endpoint slower than this is unhealthy.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_BODY: u64 = 64 * 1024;

/// TLS settings of an HTTPS probe.
#[derive(Debug, Clone)]
pub struct TlsProbe {
    /// CA bundle the server certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate and key, where the server requires one (etcd).
    pub client: Option<(PathBuf, PathBuf)>,
    /// Name the server certificate must carry.
    pub server_name: String,
}

/// Why a probe got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Connecting, sending or receiving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The TLS material could not be loaded.
    #[error("TLS material {}: {reason}", path.display())]
    Material { path: PathBuf, reason: String },
    /// The TLS configuration could not be built.
    #[error("TLS: {0}")]
    Tls(String),
    /// The answer was not HTTP.
    #[error("malformed HTTP response")]
    Malformed,
}

/// Status code and body of a GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Body, lossily decoded, at most 64 KiB.
    pub body: String,
}

/// `GET path` on `addr`, over TLS when `tls` is given.
pub fn get(addr: SocketAddr, path: &str, tls: Option<&TlsProbe>) -> Result<Response, ProbeError> {
    let tcp = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    tcp.set_read_timeout(Some(PROBE_TIMEOUT))?;
    tcp.set_write_timeout(Some(PROBE_TIMEOUT))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: hostctl-node-agent\r\nConnection: close\r\n\r\n"
    );
    let raw = match tls {
        None => exchange(tcp, &request)?,
        Some(t) => {
            let name = ServerName::try_from(t.server_name.clone())
                .map_err(|e| ProbeError::Tls(e.to_string()))?;
            let conn = ClientConnection::new(client_config(t)?, name)
                .map_err(|e| ProbeError::Tls(e.to_string()))?;
            exchange(StreamOwned::new(conn, tcp), &request)?
        }
    };
    parse(&raw)
}

fn exchange(mut stream: impl Read + Write, request: &str) -> Result<Vec<u8>, ProbeError> {
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.take(MAX_BODY).read_to_end(&mut raw) {
        Ok(_) => Ok(raw),
        // Servers often close without close_notify; what arrived still counts.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(e.into()),
    }
}

fn parse(raw: &[u8]) -> Result<Response, ProbeError> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(ProbeError::Malformed)?;
    Ok(Response {
        status,
        body: body.trim().to_owned(),
    })
}

fn client_config(t: &TlsProbe) -> Result<Arc<ClientConfig>, ProbeError> {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(&t.ca).map_err(material(&t.ca))? {
        roots
            .add(der.map_err(material(&t.ca))?)
            .map_err(material(&t.ca))?;
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ProbeError::Tls(e.to_string()))?
            .with_root_certificates(roots);
    let config = match &t.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(material(cert))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(material(cert))?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(material(key))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| ProbeError::Tls(e.to_string()))?
        }
    };
    Ok(Arc::new(config))
}

fn material<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> ProbeError + '_ {
    move |e| ProbeError::Material {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_status_and_body() -> Result<(), ProbeError> {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        assert!(parse(b"garbage").is_err());
        Ok(())
    }

    #[test]
    fn plain_get_against_a_local_server() -> Result<(), Box<dyn std::error::Error>> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = std::thread::spawn(move || -> std::io::Result<String> {
            let (mut s, _) = listener.accept()?;
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf)?;
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\n\r\n[-]etcd failed")?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        });
        let r = get(addr, "/readyz", None)?;
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "[-]etcd failed");
        let req = server.join().map_err(|_| "server thread panicked")??;
        assert!(req.starts_with("GET /readyz HTTP/1.0\r\n"), "{req}");
        Ok(())
    }

    #[test]
    fn refused_connection_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        assert!(matches!(
            get(addr, "/healthz", None),
            Err(ProbeError::Io(_))
        ));
        Ok(())
    }
}
