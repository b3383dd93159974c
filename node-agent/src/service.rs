//! The Node service: typed operations the host (or an administrator) asks
//! of this node, over mutual TLS.
//!
//! TLS already insists on a client certificate from the agent CA; every
//! call is then authorised by the certificate's roles (Organization), so
//! another node's certificate — same CA, role `hostctl:node` — is refused.

use std::sync::Arc;

use certs::{ROLE_ADMIN, ROLE_HOST};
use proto::v1::etcd_server::EtcdServer;
use proto::v1::kubeadm_server::KubeadmServer;
use proto::v1::node_server::{Node, NodeServer};
use proto::v1::provisioning_server::ProvisioningServer;
use proto::v1::{
    Error as ApiError, ErrorCode, HealthRequest, HealthResponse, LogChunk, LogsRequest, NodeMeta,
    RenewNowRequest, RenewNowResponse, VersionRequest, VersionResponse,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use crate::etcd::service::EtcdService;
use crate::kubeadm::service::KubeadmService;
use crate::logs::{LogError, LogQuery, LogReceiver, LogSource};
use crate::prereq::service::ProvisioningService;
use crate::renewal::Renewer;
use crate::report::SharedCollector;

/// Most lines per streamed chunk.
const CHUNK_LINES: usize = 200;

/// Allows callers whose certificate carries `hostctl:host` or
/// `hostctl:admin`; used as the service's interceptor.
pub fn authorise(req: Request<()>) -> Result<Request<()>, Status> {
    let certs = req
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|_| Status::unauthenticated("unreadable client certificate"))?;
    let allowed = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .any(|role| role == ROLE_HOST || role == ROLE_ADMIN);
    if allowed {
        Ok(req)
    } else {
        let who = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or("?")
            .to_owned();
        tracing::warn!(caller = %who, "refused a Node call without the host or admin role");
        Err(Status::permission_denied(format!(
            "{who} lacks role {ROLE_HOST} or {ROLE_ADMIN}"
        )))
    }
}

/// The service state.
pub struct NodeService {
    meta: NodeMeta,
    collector: SharedCollector,
    instance: String,
    logs: Arc<dyn LogSource>,
    renewer: Renewer,
}

impl NodeService {
    /// A service answering as `meta`, measuring with `collector` (the same
    /// one reports use), reading logs from `logs` and renewing the node's
    /// certificate with `renewer` (the one the automatic schedule uses).
    pub fn new(
        meta: NodeMeta,
        collector: SharedCollector,
        instance: String,
        logs: Arc<dyn LogSource>,
        renewer: Renewer,
    ) -> Self {
        NodeService {
            meta,
            collector,
            instance,
            logs,
            renewer,
        }
    }

    fn error_chunk(&self, code: ErrorCode, message: String) -> LogChunk {
        LogChunk {
            meta: Some(self.meta.clone()),
            lines: Vec::new(),
            error: Some(ApiError {
                code: code as i32,
                message,
                detail: String::new(),
            }),
        }
    }
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn version(
        &self,
        _: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        let (os, kernel) = self
            .collector
            .with(|c| (c.os().to_owned(), c.kernel().to_owned()));
        Ok(Response::new(VersionResponse {
            meta: Some(self.meta.clone()),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            api_version: proto::v1::API_VERSION.to_owned(),
            os,
            kernel,
            arch: std::env::consts::ARCH.to_owned(),
        }))
    }

    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        let response = match self.collector.collect().await {
            Some(mut report) => {
                report.agent_instance = self.instance.clone();
                HealthResponse {
                    meta: Some(self.meta.clone()),
                    report: Some(report),
                    error: None,
                }
            }
            None => HealthResponse {
                meta: Some(self.meta.clone()),
                report: None,
                error: Some(ApiError {
                    code: ErrorCode::Internal as i32,
                    message: "health collection failed".into(),
                    detail: String::new(),
                }),
            },
        };
        Ok(Response::new(response))
    }

    type LogsStream = ReceiverStream<Result<LogChunk, Status>>;

    async fn logs(&self, req: Request<LogsRequest>) -> Result<Response<Self::LogsStream>, Status> {
        let r = req.into_inner();
        let query = LogQuery {
            unit: r.unit,
            follow: r.follow,
            tail: r.tail,
        };
        let (tx, rx) = mpsc::channel(16);
        match self.logs.open(query) {
            Ok(lines) => {
                tokio::spawn(forward(lines, tx, self.meta.clone()));
            }
            Err(e) => {
                let code = match e {
                    LogError::NotFound(_) => ErrorCode::NotFound,
                    LogError::Unavailable(_) => ErrorCode::Unavailable,
                };
                // The receiver is still held here, so this cannot fail.
                let _ = tx.try_send(Ok(self.error_chunk(code, e.to_string())));
            }
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    /// Renews the agent's certificate now, through the same path (and the
    /// same one-at-a-time lock) as the automatic renewal. A failure is data
    /// in the response — the old certificate stays in use — not a
    /// transport error, so a fan-out over many nodes reports it per node.
    async fn renew_certificate(
        &self,
        _: Request<RenewNowRequest>,
    ) -> Result<Response<RenewNowResponse>, Status> {
        let response = match self.renewer.renew_now().await {
            Ok(renewed) => RenewNowResponse {
                meta: Some(self.meta.clone()),
                not_after: Some(proto::timestamp(renewed.not_after)),
                error: None,
            },
            Err(e) => {
                tracing::warn!(error = %e, "renewal asked for over the Node service failed; the current certificate stays in use");
                RenewNowResponse {
                    meta: Some(self.meta.clone()),
                    not_after: None,
                    error: Some(ApiError {
                        code: e.code() as i32,
                        message: e.to_string(),
                        detail: String::new(),
                    }),
                }
            }
        };
        Ok(Response::new(response))
    }
}

/// Batches lines into chunks: whatever is ready now, up to `CHUNK_LINES`.
async fn forward(
    mut lines: LogReceiver,
    tx: mpsc::Sender<Result<LogChunk, Status>>,
    meta: NodeMeta,
) {
    while let Some(first) = lines.recv().await {
        let mut chunk = LogChunk {
            meta: Some(meta.clone()),
            ..Default::default()
        };
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Ok(line) => chunk.lines.push(line),
                Err(e) => {
                    chunk.error = Some(ApiError {
                        code: ErrorCode::Unavailable as i32,
                        message: e.to_string(),
                        detail: String::new(),
                    });
                    break;
                }
            }
            if chunk.lines.len() < CHUNK_LINES {
                next = lines.try_recv().ok();
            }
        }
        let last = chunk.error.is_some();
        if tx.send(Ok(chunk)).await.is_err() || last {
            return;
        }
    }
}

/// Serves the Node, Etcd, Provisioning and Kubeadm services on
/// `listener` with `tls` ([`crate::node_tls`]: the certificate is the
/// identity cell's at each handshake); stops when the future is dropped.
/// All are authorised by [`authorise`].
pub async fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    service: NodeService,
    etcd: EtcdService,
    provisioning: ProvisioningService,
    kubeadm: KubeadmService,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        // tracing: one span per call, child of the host's (docs/tracing.md)
        .layer(telemetry::ServerSpanLayer)
        .add_service(NodeServer::with_interceptor(service, authorise))
        .add_service(EtcdServer::with_interceptor(etcd, authorise))
        .add_service(ProvisioningServer::with_interceptor(
            provisioning,
            authorise,
        ))
        .add_service(KubeadmServer::with_interceptor(kubeadm, authorise))
        .serve_with_incoming(crate::node_tls::incoming(listener, tls))
        .await
}
