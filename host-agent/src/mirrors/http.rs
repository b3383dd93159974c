//! The one narrow interface Harbor's and Nexus's REST APIs are driven
//! through ([`Api`]: a request in, status and body out), and its real
//! implementation over hyper: HTTPS with only the lab root trusted
//! (Harbor) or plain HTTP on the host (Nexus), HTTP basic auth, a bounded
//! body and a per-request timeout. Tests put a stand-in behind the trait.

use super::error::MirrorError;
use async_trait::async_trait;
use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Both APIs answer with small JSON documents.
const MAX_BODY: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(30);

/// A request body: JSON, or plain text (Nexus's change-password).
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    Json(Value),
    Text(String),
}

/// One API call: `path` includes the query string.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub body: Body,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Request {
        Request {
            method: "GET",
            path: path.into(),
            body: Body::None,
        }
    }

    pub fn head(path: impl Into<String>) -> Request {
        Request {
            method: "HEAD",
            ..Request::get(path)
        }
    }

    pub fn post(path: impl Into<String>, body: Value) -> Request {
        Request {
            method: "POST",
            path: path.into(),
            body: Body::Json(body),
        }
    }

    pub fn put_text(path: impl Into<String>, text: impl Into<String>) -> Request {
        Request {
            method: "PUT",
            path: path.into(),
            body: Body::Text(text.into()),
        }
    }
}

/// The answer: status, body (`Null` when empty or not JSON) and the
/// `Location` header (Harbor names a created resource there).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Value,
    pub location: Option<String>,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Harbor's or Nexus's REST API, as hostctl uses it.
#[async_trait]
pub trait Api: Send + Sync {
    /// Where it answers (for messages).
    fn address(&self) -> &str;
    /// Sends one request with the API's credentials.
    async fn send(&self, request: &Request) -> Result<Response, MirrorError>;
}

/// The real client for one server.
pub struct HttpApi {
    address: String,
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    authorization: Option<String>,
}

impl HttpApi {
    /// `address` is `http(s)://host:port`; `ca_pem` (required for https)
    /// is the only trust; `basic` is (user, password).
    pub fn new(
        address: &str,
        ca_pem: Option<&str>,
        basic: Option<(&str, &str)>,
    ) -> Result<HttpApi, MirrorError> {
        let authorization = basic.map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        HttpApi::with_authorization(address, ca_pem, authorization)
    }

    /// A plain-HTTP API authorised by a bearer token (the object store's
    /// admin API, storage::admin).
    pub fn bearer(address: &str, token: &str) -> Result<HttpApi, MirrorError> {
        HttpApi::with_authorization(address, None, Some(format!("Bearer {token}")))
    }

    fn with_authorization(
        address: &str,
        ca_pem: Option<&str>,
        authorization: Option<String>,
    ) -> Result<HttpApi, MirrorError> {
        let bad = |reason: String| MirrorError::Config {
            what: format!("the client for {address}"),
            reason,
        };
        let (https, rest) = match (
            address.strip_prefix("https://"),
            address.strip_prefix("http://"),
        ) {
            (Some(r), _) => (true, r),
            (None, Some(r)) => (false, r),
            _ => return Err(bad("not an http(s) URL".into())),
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| bad(format!("bad port in {authority}")))?,
            ),
            None => (authority, if https { 443 } else { 80 }),
        };
        let tls = if https {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca_pem.unwrap_or_default().as_bytes()) {
                roots
                    .add(cert.map_err(|e| bad(e.to_string()))?)
                    .map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("HTTPS needs the CA that signed the server".into()));
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| bad(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(HttpApi {
            address: address.trim_end_matches('/').to_owned(),
            host: host.to_owned(),
            port,
            tls,
            authorization,
        })
    }

    async fn exchange<S>(&self, stream: S, request: &Request) -> Result<Response, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(conn);
        let (payload, content_type) = match &request.body {
            Body::None => (Bytes::new(), None),
            Body::Json(v) => (Bytes::from(v.to_string()), Some("application/json")),
            Body::Text(t) => (Bytes::from(t.clone()), Some("text/plain")),
        };
        let mut builder = hyper::Request::builder()
            .method(request.method)
            .uri(&request.path)
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
            .header(hyper::header::USER_AGENT, "hostctl")
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(ct) = content_type {
            builder = builder.header(hyper::header::CONTENT_TYPE, ct);
        }
        if let Some(auth) = &self.authorization {
            builder = builder.header(hyper::header::AUTHORIZATION, auth);
        }
        let result = async {
            let req = builder
                .body(Full::new(payload))
                .map_err(|e| e.to_string())?;
            let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok(Response {
                status,
                body,
                location,
            })
        }
        .await;
        driver.abort();
        result
    }

    async fn send_once(&self, request: &Request) -> Result<Response, String> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        match &self.tls {
            Some(tls) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| e.to_string())?;
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                self.exchange(stream, request).await
            }
            None => self.exchange(tcp, request).await,
        }
    }
}

#[async_trait]
impl Api for HttpApi {
    fn address(&self) -> &str {
        &self.address
    }

    async fn send(&self, request: &Request) -> Result<Response, MirrorError> {
        let unreachable = |reason: String| MirrorError::Unreachable {
            call: format!("{} {}{}", request.method, self.address, request.path),
            reason,
        };
        match tokio::time::timeout(TIMEOUT, self.send_once(request)).await {
            Ok(result) => result.map_err(unreachable),
            Err(_) => Err(unreachable(format!(
                "no answer within {}s",
                TIMEOUT.as_secs()
            ))),
        }
    }
}
