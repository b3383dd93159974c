//! The platform repository over HTTPS, read-only: Git's smart HTTP
//! protocol, answered by `git http-backend` ([`super::cgi`]), behind
//! rustls and hyper.
//!
//! Exactly two requests reach git: `GET /platform.git/info/refs?service=git-upload-pack`
//! and `POST /platform.git/git-upload-pack` (what `git clone`/`fetch` and
//! Argo CD send). Anything naming `git-receive-pack` (a push) is 403;
//! every other path, including the dumb protocol's files and any other
//! repository, is 404. Peers are bounded before they are served:
//! connections admitted and handshaken as on the daemon's own listeners
//! ([`crate::daemon::listener`]: totals, per-peer shares, handshake
//! timeout), request headers bounded in size, count and time, request
//! bodies bounded ([`GitServerLimits::max_body`]; a declared length over
//! it is refused before a byte of the body is read), and at most
//! [`GitServerLimits::concurrent_requests`] git processes at a time.

use super::cgi::{self, CgiLimits, CgiRequest};
use super::error::GitopsError;
use super::identity::ServerIdentity;
use crate::daemon::listener::{self, Admission, ListenerLimits};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tonic::transport::server::Connected as _;

/// The repository's two smart-HTTP endpoints.
const INFO_REFS: &str = "/platform.git/info/refs";
const UPLOAD_PACK: &str = "/platform.git/git-upload-pack";
const RECEIVE_PACK: &str = "/platform.git/git-receive-pack";
const UPLOAD_SERVICE: &str = "service=git-upload-pack";

/// The bounds of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GitServerLimits {
    /// Connections (admission as on the daemon's listeners).
    pub connections: ListenerLimits,
    pub handshake_timeout: Duration,
    /// A request's headers must have arrived within this.
    pub header_timeout: Duration,
    /// A request's header block, in bytes (hyper's read buffer).
    pub max_header_bytes: usize,
    /// Header lines per request.
    pub max_headers: usize,
    /// A request's body, in bytes (an upload-pack request lists the
    /// client's wants and haves: kilobytes for this repository).
    pub max_body: usize,
    /// How long reading a request's body may take.
    pub body_timeout: Duration,
    /// `git http-backend` processes at once; more requests wait
    /// [`queue_wait`](Self::queue_wait) for a slot, then get 503.
    pub concurrent_requests: usize,
    pub queue_wait: Duration,
    /// Each git run's bounds.
    pub cgi: CgiLimits,
}

/// The limits the daemon serves with: a handful of clients (Argo CD's
/// repo server, a person inspecting the repository).
pub const DEFAULT_LIMITS: GitServerLimits = GitServerLimits {
    connections: ListenerLimits {
        total: 32,
        per_peer: 8,
        handshakes: 16,
        per_peer_on_loopback: false,
    },
    handshake_timeout: Duration::from_secs(10),
    header_timeout: Duration::from_secs(10),
    max_header_bytes: 16 * 1024,
    max_headers: 48,
    max_body: 16 * 1024 * 1024,
    body_timeout: Duration::from_secs(60),
    concurrent_requests: 4,
    queue_wait: Duration::from_secs(30),
    cgi: CgiLimits {
        deadline: Duration::from_secs(300),
        max_response: 1 << 30,
    },
};

/// What to serve and where.
#[derive(Debug, Clone)]
pub struct GitServerConfig {
    /// The directory holding `platform.git` ([`super::gitops_dir`]).
    pub project_root: PathBuf,
    /// Addresses to listen on, all with one port.
    pub addresses: Vec<IpAddr>,
    /// [`super::GIT_PORT`]; 0 picks a free port (tests).
    pub port: u16,
    pub identity: ServerIdentity,
    pub limits: GitServerLimits,
}

impl GitServerConfig {
    /// Serving `home`'s repository on `addresses`:`port`, with the kept
    /// identity (made now if needed) naming `addresses` and `also_names`.
    pub fn for_home(
        home: &Path,
        addresses: Vec<IpAddr>,
        port: u16,
        also_names: &[IpAddr],
    ) -> Result<GitServerConfig, GitopsError> {
        let project_root = super::gitops_dir(home);
        let names: Vec<IpAddr> = addresses
            .iter()
            .chain(also_names)
            .copied()
            .filter(|ip| !ip.is_unspecified())
            .collect();
        let identity = ServerIdentity::load_or_create(&project_root, &names)?;
        Ok(GitServerConfig {
            project_root,
            addresses,
            port,
            identity,
            limits: DEFAULT_LIMITS,
        })
    }
}

/// A running server (tasks in the caller's runtime).
#[derive(Debug)]
pub struct GitServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What every request handler shares.
struct Shared {
    project_root: PathBuf,
    limits: GitServerLimits,
    requests: Arc<Semaphore>,
}

type Body = BoxBody<Bytes, std::io::Error>;

impl GitServer {
    /// Binds and serves. On a Mac the bridge address may not exist yet;
    /// the listener then waits for it as the daemon's do
    /// ([`crate::daemon::bind`]).
    pub async fn start(config: GitServerConfig) -> Result<GitServer, GitopsError> {
        let tls = config.identity.acceptor()?;
        let what = "the Git server";
        let (sockets, addr) = crate::daemon::bind::bind_all(what, &config.addresses, config.port)
            .await
            .map_err(|source| GitopsError::Bind {
                addr: addresses_text(&config.addresses, config.port),
                source,
            })?;
        let mut incoming = listener::serve(listener::Listener {
            what: "Git server",
            tcp: sockets,
            admission: Arc::new(Admission::new(config.limits.connections)),
            tls,
            handshake_timeout: config.limits.handshake_timeout,
        });
        let shared = Arc::new(Shared {
            project_root: config.project_root,
            limits: config.limits,
            requests: Arc::new(Semaphore::new(config.limits.concurrent_requests)),
        });
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = stop_requested(&mut stopped) => break,
                    next = incoming.next() => next,
                };
                match next {
                    Some(Ok(tls)) => {
                        tokio::spawn(connection(tls, shared.clone(), stopped.clone()));
                    }
                    Some(Err(e)) => tracing::debug!("Git server: connection failed: {e}"),
                    None => break,
                }
            }
        });
        tracing::info!(%addr, "Git server serving the platform repository");
        Ok(GitServer { addr, stop, task })
    }

    /// The first address it is bound to (its port is every address's).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; open connections finish the request they are in.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

fn addresses_text(addresses: &[IpAddr], port: u16) -> String {
    addresses
        .iter()
        .map(|ip| SocketAddr::new(*ip, port).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The daemon's Git server on `listen` (and the names its certificate must
/// carry besides: the advertised host address, loopback). Any failure is
/// a warning: the agent plane does not depend on it, and `up` reports
/// Argo CD's sync failing with the reason in the daemon's log.
pub async fn start_for_daemon(
    home: &Path,
    listen: Vec<IpAddr>,
    port: u16,
    advertise: Option<IpAddr>,
) -> Option<GitServer> {
    let names: Vec<IpAddr> = advertise
        .into_iter()
        .chain([IpAddr::V4(Ipv4Addr::LOCALHOST)])
        .collect();
    let started = match GitServerConfig::for_home(home, listen, port, &names) {
        Ok(config) => GitServer::start(config).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(server) => Some(server),
        Err(e) => {
            tracing::warn!(
                "the platform Git server is not running ({}); Argo CD cannot sync until the daemon restarts",
                telemetry::error_chain::chain(&e)
            );
            None
        }
    }
}

/// Returns once a stop is requested (or the server is gone).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Serves one TLS connection with HTTP/1.1 until it closes or the server
/// stops (then after its current request).
async fn connection(
    tls: tokio_rustls::server::TlsStream<listener::Admitted>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let peer = tls
        .get_ref()
        .0
        .connect_info()
        .remote_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let limits = shared.limits;
    let service = hyper::service::service_fn(move |req| handle(req, shared.clone(), peer));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    let conn = http.serve_connection(hyper_util::rt::TokioIo::new(tls), service);
    tokio::pin!(conn);
    let served = tokio::select! {
        served = conn.as_mut() => served,
        () = stop_requested(&mut stopped) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = served {
        tracing::debug!(%peer, "Git server: connection ended: {e}");
    }
}

/// Which endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    InfoRefs,
    UploadPack,
    /// A push: the repository is read-only.
    Forbidden,
    /// One of the endpoints, with the wrong method; the right one.
    WrongMethod(&'static str),
    NotFound,
}

fn route(method: &Method, path: &str, query: Option<&str>) -> Route {
    let service = query
        .unwrap_or_default()
        .split('&')
        .find(|p| p.starts_with("service="));
    let (endpoint, allowed) = match (path, service) {
        (RECEIVE_PACK, _) | (INFO_REFS, Some("service=git-receive-pack")) => {
            return Route::Forbidden;
        }
        (INFO_REFS, Some(UPLOAD_SERVICE)) => (Route::InfoRefs, "GET"),
        (UPLOAD_PACK, _) => (Route::UploadPack, "POST"),
        _ => return Route::NotFound,
    };
    if method.as_str() == allowed {
        endpoint
    } else {
        Route::WrongMethod(allowed)
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    peer: IpAddr,
) -> Result<Response<Body>, Infallible> {
    let route = route(req.method(), req.uri().path(), req.uri().query());
    tracing::debug!(%peer, method = %req.method(), path = req.uri().path(), ?route, "Git server request");
    Ok(match route {
        Route::NotFound => text(StatusCode::NOT_FOUND, "not found"),
        Route::Forbidden => text(
            StatusCode::FORBIDDEN,
            "the platform repository is read-only",
        ),
        Route::WrongMethod(allowed) => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static(allowed),
            );
            response
        }
        Route::InfoRefs => git(req, &shared, peer, "GET", INFO_REFS, UPLOAD_SERVICE).await,
        Route::UploadPack => git(req, &shared, peer, "POST", UPLOAD_PACK, "").await,
    })
}

/// Runs `git http-backend` for the request (its body bounded), once a
/// slot is free.
async fn git(
    req: Request<Incoming>,
    shared: &Shared,
    peer: IpAddr,
    method: &'static str,
    path_info: &'static str,
    query: &'static str,
) -> Response<Body> {
    let limits = shared.limits;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return too_large(limits.max_body);
    }
    let permit = tokio::time::timeout(limits.queue_wait, shared.requests.clone().acquire_owned());
    let Ok(Ok(permit)) = permit.await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "the Git server is busy");
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, git_protocol, content_encoding) = (
        header("content-type"),
        header("git-protocol"),
        header("content-encoding"),
    );
    let body = Limited::new(req.into_body(), limits.max_body).collect();
    let body = match tokio::time::timeout(limits.body_timeout, body).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(limits.max_body);
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, "Git server: reading a request body failed: {e}");
            return text(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            );
        }
        Err(_) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "the request body took too long",
            );
        }
    };
    let request = CgiRequest {
        method,
        path_info,
        query,
        content_type,
        git_protocol,
        content_encoding,
        remote_addr: peer,
        body,
    };
    match cgi::run(&shared.project_root, request, limits.cgi, permit).await {
        Ok(answer) => {
            let stream = tokio_stream::wrappers::ReceiverStream::new(answer.body)
                .map(|chunk| chunk.map(Frame::data));
            let mut response = Response::builder().status(answer.status);
            for (name, value) in &answer.headers {
                response = response.header(name.as_str(), value.as_str());
            }
            response
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap_or_else(|e| {
                    tracing::warn!("Git server: git http-backend's headers are unusable: {e}");
                    text(StatusCode::BAD_GATEWAY, "bad response from git")
                })
        }
        Err(e) => {
            tracing::warn!("Git server: {}", telemetry::error_chain::chain(&e));
            text(StatusCode::BAD_GATEWAY, "git http-backend failed")
        }
    }
}

fn too_large(max: usize) -> Response<Body> {
    let mut response = text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request bodies are limited to {max} bytes"),
    );
    // The unread rest of the body makes the connection unusable.
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(format!("{message}\n")))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_fetch_endpoints_reach_git_and_pushes_are_forbidden() {
        let get = Method::GET;
        let post = Method::POST;
        let q = Some("service=git-upload-pack");
        assert_eq!(route(&get, INFO_REFS, q), Route::InfoRefs);
        assert_eq!(route(&post, UPLOAD_PACK, None), Route::UploadPack);
        assert_eq!(route(&post, INFO_REFS, q), Route::WrongMethod("GET"));
        assert_eq!(route(&get, UPLOAD_PACK, None), Route::WrongMethod("POST"));
        let push = Some("service=git-receive-pack");
        assert_eq!(route(&get, INFO_REFS, push), Route::Forbidden);
        assert_eq!(route(&post, RECEIVE_PACK, None), Route::Forbidden);
        for (path, query) in [
            ("/platform.git/info/refs", None),
            ("/platform.git/HEAD", None),
            ("/platform.git/objects/info/packs", None),
            ("/other.git/info/refs", q),
            ("/platform.git/../state.redb", None),
            ("/", None),
        ] {
            assert_eq!(route(&get, path, query), Route::NotFound, "{path}");
        }
    }
}
