//! The HTTPS client: one Vault address, its CA pinned (Vault's serving
//! certificate comes from the lab PKI, so the system bundle is irrelevant),
//! `X-Vault-Token` when a token is set, JSON both ways, a bounded body and a
//! per-request timeout. One connection per request: bootstrap makes a few
//! dozen calls, and a fresh connection never inherits a half-dead one.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::Method;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::error::VaultError;
use crate::secret::Secret;

/// Vault's answers are small JSON documents; anything larger is refused.
pub const MAX_BODY: usize = 1 << 20;
/// Per-request timeout unless [`VaultClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one Vault server.
#[derive(Clone)]
pub struct VaultClient {
    address: String,
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: Option<Secret>,
    timeout: Duration,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.address)
            .field("token", &self.token)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Vault's answer: the status and the JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The decoded body.
    pub body: Value,
}

impl VaultClient {
    /// A client for `address` (`https://host[:port]`) trusting only the
    /// certificates in `ca_pem`.
    pub fn new(address: &str, ca_pem: &str) -> Result<VaultClient, VaultError> {
        let (host, port) = split(address)?;
        let bad_ca = |reason: String| VaultError::BadCa {
            address: address.to_owned(),
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| bad_ca(e.to_string()))?;
            roots.add(cert).map_err(|e| bad_ca(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad_ca("no certificate in the PEM".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad_ca(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(VaultClient {
            address: address.trim_end_matches('/').to_owned(),
            host,
            port,
            tls: Arc::new(tls),
            token: None,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client authenticating with `token`.
    pub fn with_token(&self, token: Secret) -> VaultClient {
        VaultClient {
            token: Some(token),
            ..self.clone()
        }
    }

    /// The same client with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> VaultClient {
        self.timeout = timeout;
        self
    }

    /// The address this client talks to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends one request and returns whatever Vault answered, error statuses
    /// included (callers that branch on the status use this).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, VaultError> {
        let attempt = tokio::time::timeout(self.timeout, self.send_once(&method, path, body));
        match attempt.await {
            Ok(result) => result,
            Err(_) => Err(VaultError::Timeout {
                method: method.to_string(),
                path: path.to_owned(),
                address: self.address.clone(),
                after: self.timeout,
            }),
        }
    }

    /// Sends one request; a non-2xx status is a [`VaultError::Api`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, VaultError> {
        let answer = self.send(method.clone(), path, body).await?;
        if (200..300).contains(&answer.status) {
            Ok(answer.body)
        } else {
            Err(api_error(&method, path, &answer))
        }
    }

    /// `GET`, with 404 as `None` (a path that does not exist yet).
    pub async fn read(&self, path: &str) -> Result<Option<Value>, VaultError> {
        let answer = self.send(Method::GET, path, None).await?;
        match answer.status {
            200..300 => Ok(Some(answer.body)),
            404 => Ok(None),
            _ => Err(api_error(&Method::GET, path, &answer)),
        }
    }

    /// `POST` with a JSON body.
    pub async fn write(&self, path: &str, body: &Value) -> Result<Value, VaultError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// One connection to Vault (TLS to the pinned CA only) for `method
    /// path`: the sender and the task driving the connection, which the
    /// caller aborts when done. Generic over the body, so a snapshot can
    /// stream a file where the JSON calls send a document.
    pub(crate) async fn connect<B>(
        &self,
        method: &Method,
        path: &str,
    ) -> Result<(SendRequest<B>, JoinHandle<Result<(), hyper::Error>>), VaultError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let transport = |reason: String| self.transport(method, path, reason);
        let name = ServerName::try_from(self.host.clone()).map_err(|e| transport(e.to_string()))?;
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| transport(format!("connecting: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| transport(format!("TLS: {e}")))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport(e.to_string()))?;
        Ok((sender, tokio::spawn(conn)))
    }

    /// A request to `path` with the host, user agent and token headers.
    pub(crate) fn request(&self, method: &Method, path: &str) -> hyper::http::request::Builder {
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
            .header(hyper::header::USER_AGENT, "hostctl");
        if let Some(token) = &self.token {
            request = request.header("X-Vault-Token", token.expose());
        }
        request
    }

    /// A [`VaultError::Transport`] for `method path` on this server.
    pub(crate) fn transport(&self, method: &Method, path: &str, reason: String) -> VaultError {
        VaultError::Transport {
            method: method.to_string(),
            path: path.to_owned(),
            address: self.address.clone(),
            reason,
        }
    }

    /// The per-request timeout (a snapshot applies it to each step).
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, VaultError> {
        let transport = |reason: String| self.transport(method, path, reason);
        let (mut sender, driver) = self.connect(method, path).await?;
        let payload = match body {
            Some(v) => Bytes::from(v.to_string()),
            None => Bytes::new(),
        };
        let request = self
            .request(method, path)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(payload))
            .map_err(|e| transport(e.to_string()))?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| transport(e.to_string()))?;
            read_answer(method, path, response).await
        }
        .await;
        driver.abort();
        result
    }
}

/// Vault's answer to a sent request: its status and its (bounded) JSON body.
pub(crate) async fn read_answer(
    method: &Method,
    path: &str,
    response: hyper::Response<hyper::body::Incoming>,
) -> Result<Answer, VaultError> {
    let status = response.status().as_u16();
    let bytes = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| VaultError::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            reason: format!("reading the body (at most {MAX_BODY} bytes): {e}"),
        })?
        .to_bytes();
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| VaultError::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            reason: format!("not JSON ({status}): {e}"),
        })?
    };
    Ok(Answer { status, body })
}

/// The error for a non-2xx answer, with Vault's `errors` array.
pub fn api_error(method: &Method, path: &str, answer: &Answer) -> VaultError {
    let errors = answer.body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    VaultError::Api {
        method: method.to_string(),
        path: path.to_owned(),
        status: answer.status,
        errors,
    }
}

/// `value` as `T`, or an error naming the call whose answer it was.
pub fn decode<T: serde::de::DeserializeOwned>(
    method: &str,
    path: &str,
    value: Value,
) -> Result<T, VaultError> {
    serde_json::from_value(value).map_err(|e| VaultError::Decode {
        method: method.to_owned(),
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// `https://host[:port]` into host and port (default 8200, Vault's).
fn split(address: &str) -> Result<(String, u16), VaultError> {
    let bad = || VaultError::BadAddress {
        address: address.to_owned(),
    };
    let rest = address.strip_prefix("https://").ok_or_else(bad)?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(bad());
    }
    let port_of = |p: &str| p.parse::<u16>().map_err(|_| bad());
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (host, port_of(p)?),
            None if after.is_empty() => (host, 8200),
            None => return Err(bad()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, p)) => (host, port_of(p)?),
            None => (authority, 8200),
        }
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(
            split("https://127.0.0.1:18200").unwrap(),
            ("127.0.0.1".into(), 18200)
        );
        assert_eq!(
            split("https://vault.lab.internal/").unwrap(),
            ("vault.lab.internal".into(), 8200)
        );
        assert!(split("http://vault:8200").is_err());
        assert!(split("https://vault:8200/v1").is_err());
        assert_eq!(split("https://[::1]:8201").unwrap(), ("::1".into(), 8201));
    }

    #[test]
    fn debug_hides_the_token() {
        let ca = rcgen::generate_simple_self_signed(vec!["vault".into()])
            .unwrap()
            .cert
            .pem();
        let c = VaultClient::new("https://127.0.0.1:1", &ca)
            .unwrap()
            .with_token(Secret::new("s.topsecret"));
        let shown = format!("{c:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("topsecret"),
            "{shown}"
        );
    }
}
