//! `GET /metrics` over HTTPS with mutual TLS, for both agents.
//!
//! The caller owns the listening socket and the TLS handshake (each agent
//! already has an admission layer with handshake timeouts and budgets:
//! the daemon's `daemon::listener`, the node agent's `node_tls::incoming`), and
//! hands this module finished TLS connections. Here each connection's
//! client certificate — already verified against the agent CA by the
//! handshake — is put to the caller's [`Authorize`] check (the agents'
//! own role checks, so the metrics port has the same notion of identity
//! as the rest of the agent plane), and only then is anything served.
//!
//! Bounds: at most [`MetricsServerLimits::connections`] connections are
//! served at once (more are closed at once), HTTP/1.1 only (no request
//! body is read: only `GET` is answered), request headers bounded in size,
//! count and time, and a connection lives at most
//! [`MetricsServerLimits::connection_lifetime`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_stream::{Stream, StreamExt as _};

use super::text::CONTENT_TYPE;

/// The one path served.
pub const METRICS_PATH: &str = "/metrics";

/// The ALPN protocol the metrics listeners offer: this server speaks
/// HTTP/1.1 only (what Prometheus scrapes with by default).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Checks a verified client certificate (the leaf's DER): `Err` carries the
/// reason, logged at debug level (the peer is only told 403).
pub type Authorize = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// Renders the current exposition (called once per scrape).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The bounds of one metrics server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsServerLimits {
    /// Connections served at once (one Prometheus, maybe a person with
    /// curl).
    pub connections: usize,
    /// A request's headers must have arrived within this.
    pub header_timeout: Duration,
    /// A request's header block, in bytes.
    pub max_header_bytes: usize,
    /// Header lines per request.
    pub max_headers: usize,
    /// A connection is closed after this long, whatever it is doing.
    pub connection_lifetime: Duration,
}

/// The limits both agents serve with.
pub const DEFAULT_LIMITS: MetricsServerLimits = MetricsServerLimits {
    connections: 4,
    header_timeout: Duration::from_secs(10),
    max_header_bytes: 8 * 1024,
    max_headers: 32,
    connection_lifetime: Duration::from_secs(300),
};

/// Serves every connection `incoming` yields until `stop` resolves (or the
/// stream ends). Returns the accept loop's task.
pub fn serve<S, I, F>(
    mut incoming: I,
    authorize: Authorize,
    render: Render,
    limits: MetricsServerLimits,
    stop: F,
) -> JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    I: Stream<Item = io::Result<TlsStream<S>>> + Unpin + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.connections));
    tokio::spawn(async move {
        tokio::pin!(stop);
        loop {
            let next = tokio::select! {
                () = &mut stop => break,
                next = incoming.next() => next,
            };
            let tls = match next {
                Some(Ok(tls)) => tls,
                Some(Err(e)) => {
                    tracing::debug!("metrics: connection failed: {e}");
                    continue;
                }
                None => break,
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::debug!("metrics: too many connections; one closed");
                continue;
            };
            let verdict = peer_verdict(&tls, &authorize);
            let render = render.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let served = tokio::time::timeout(
                    limits.connection_lifetime,
                    connection(tls, verdict, render, limits),
                );
                if served.await.is_err() {
                    tracing::debug!("metrics: connection closed at its lifetime");
                }
            });
        }
    })
}

/// Whether the connection's client may scrape.
fn peer_verdict<S>(tls: &TlsStream<S>, authorize: &Authorize) -> Result<(), String> {
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| "no client certificate".to_owned())?;
    authorize(leaf.as_ref())
}

async fn connection<S>(
    tls: TlsStream<S>,
    verdict: Result<(), String>,
    render: Render,
    limits: MetricsServerLimits,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Err(reason) = &verdict {
        tracing::debug!("metrics: refused a scraper: {reason}");
    }
    let allowed = verdict.is_ok();
    let service = hyper::service::service_fn(move |req| {
        let render = render.clone();
        async move { Ok::<_, Infallible>(answer(&req, allowed, &render)) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    if let Err(e) = http
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .await
    {
        tracing::debug!("metrics: connection ended: {e}");
    }
}

fn answer(req: &Request<Incoming>, allowed: bool, render: &Render) -> Response<Full<Bytes>> {
    if !allowed {
        // Closing, too: a refused peer gets nothing more on this connection.
        let mut r = text(StatusCode::FORBIDDEN, "forbidden\n".into(), "text/plain");
        r.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return r;
    }
    if req.uri().path() != METRICS_PATH {
        return text(StatusCode::NOT_FOUND, "not found\n".into(), "text/plain");
    }
    if req.method() != Method::GET {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
            "text/plain",
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET"),
        );
        return r;
    }
    text(StatusCode::OK, render(), CONTENT_TYPE)
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}
