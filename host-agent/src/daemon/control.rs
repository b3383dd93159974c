//! The Control service on `$HOSTCTL_HOME/daemon.sock` (mode 0600): the CLI's
//! way into the daemon. Access is the socket file's permission: only the
//! user owning the home can connect, so no further authentication is done.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::v1::control_server::Control;
use proto::v1::{
    EnrolmentRefusal, HistoryRequest, HistoryResponse, IssueTokenRequest, IssueTokenResponse,
    NodeMeta, NodeStatus, RevokeNodeRequest, RevokeNodeResponse, ShutdownRequest, ShutdownResponse,
    StatusRequest, StatusResponse, WatchNodeRequest,
};
use tonic::{Request, Response, Status};

use super::staleness;
use super::state::Shared;
use crate::agent_plane::DEFAULT_TOKEN_TTL;
use crate::store::{NodeRecord, StoreError};

/// The Control service of one daemon.
#[derive(Clone)]
pub struct ControlService {
    shared: Arc<Shared>,
}

impl ControlService {
    pub fn new(shared: Arc<Shared>) -> Self {
        ControlService { shared }
    }

    fn cluster_of(&self, node: &str) -> String {
        self.shared
            .config
            .nodes
            .get(node)
            .map(|e| e.cluster.clone())
            .unwrap_or_default()
    }

    /// `node`'s status as `Status` would show it now.
    pub(super) async fn status_of(&self, node: &str) -> Result<NodeStatus, Status> {
        let store = self.shared.store.clone();
        let records = blocking(move || store.nodes()).await?;
        let now = self.shared.config.clock.now();
        Ok(self.node_status(node, records.get(node), now))
    }

    fn node_status(&self, node: &str, record: Option<&NodeRecord>, now: SystemTime) -> NodeStatus {
        // Judged by the host's receipt of the node's most recent report,
        // whatever its `taken_at` says (issue 13, item 10).
        let received = record.and_then(|r| r.last_received_at);
        let report = record.and_then(|r| r.latest.report.clone());
        let interval = report.as_ref().map(|r| r.interval_seconds).unwrap_or(0);
        let skew = record
            .and_then(|r| {
                let taken = r.latest.report.as_ref()?.taken_at.as_ref()?;
                let at = r.latest.received_at.as_ref()?;
                Some(staleness::clock_skew(
                    proto::system_time(taken)?,
                    proto::system_time(at)?,
                ))
            })
            .and_then(|s| staleness::skew_warning(s).map(|w| (s, w)));
        NodeStatus {
            meta: Some(NodeMeta {
                node: node.to_owned(),
                cluster: self.cluster_of(node),
            }),
            connected: self.shared.connections.is_connected(node),
            stale: received.is_some_and(|t| staleness::is_stale(t, interval, now)),
            last_report: report,
            last_report_received_at: received.map(proto::timestamp),
            reports_stored: record.map(|r| r.stored).unwrap_or(0),
            reports_dropped: record.map(|r| r.dropped).unwrap_or(0),
            addresses: self
                .shared
                .config
                .nodes
                .get(node)
                .map(|e| e.addresses.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            last_enrolment_refusal: self.shared.refusals.last(node).map(|r| EnrolmentRefusal {
                at: Some(proto::timestamp(r.at)),
                reason: r.reason,
                peer: r.peer.map(|p| p.to_string()).unwrap_or_default(),
                // Asked now: a relaunch since then issued a newer token.
                current_token: r
                    .token_id
                    .as_deref()
                    .is_some_and(|id| self.shared.tokens.is_newest_for(id, node).unwrap_or(false)),
            }),
            clock_skew_seconds: skew.as_ref().map_or(0, |(s, _)| *s),
            clock_warning: skew.map(|(_, w)| w).unwrap_or_default(),
            agent_cert_not_after: self
                .shared
                .node_certs
                .in_use(node)
                .map(|c| proto::timestamp(c.not_after)),
            agent_cert_warning: self
                .shared
                .node_certs
                .warning(node, now)
                .unwrap_or_default(),
        }
    }
}

fn store_status(e: StoreError) -> Status {
    Status::unavailable(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(store_status)
}

#[tonic::async_trait]
impl Control for ControlService {
    type WatchNodeStream = super::node_watch::NodeStatusStream;

    async fn watch_node(
        &self,
        req: Request<WatchNodeRequest>,
    ) -> Result<Response<Self::WatchNodeStream>, Status> {
        let node = req.into_inner().node;
        Ok(Response::new(super::node_watch::watch(
            self.clone(),
            self.shared.clone(),
            node,
        )))
    }

    /// Every node of the topology, plus any node that reported without
    /// being in it (e.g. removed from the topology since).
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let store = self.shared.store.clone();
        let records = blocking(move || store.nodes()).await?;
        let now = self.shared.config.clock.now();
        let names: BTreeSet<&String> = self
            .shared
            .config
            .nodes
            .keys()
            .chain(records.keys())
            .collect();
        let nodes = names
            .into_iter()
            .map(|n| self.node_status(n, records.get(n), now))
            .collect();
        Ok(Response::new(StatusResponse {
            nodes,
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            now: Some(proto::timestamp(now)),
            host_endpoint: self.shared.host_endpoint.to_string(),
            enrol_endpoint: self.shared.enrol_endpoint.to_string(),
            daemon_pid: std::process::id(),
        }))
    }

    async fn issue_token(
        &self,
        req: Request<IssueTokenRequest>,
    ) -> Result<Response<IssueTokenResponse>, Status> {
        let r = req.into_inner();
        if !self.shared.config.nodes.contains_key(&r.node) {
            return Err(Status::not_found(format!(
                "node {:?} is not in the topology",
                r.node
            )));
        }
        let ttl = match r.ttl_seconds {
            0 => DEFAULT_TOKEN_TTL,
            s => Duration::from_secs(u64::from(s)),
        };
        let shared = self.shared.clone();
        let node = r.node.clone();
        let token = tokio::task::spawn_blocking(move || shared.tokens.issue(&node, ttl))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(format!("cannot issue a token: {e}")))?;
        // An earlier refusal is no longer of the node's newest token.
        self.shared.changes.notify(&r.node);
        tracing::info!(
            node = r.node,
            ttl_s = ttl.as_secs(),
            "enrolment token issued"
        );
        Ok(Response::new(IssueTokenResponse {
            token,
            expires_at: Some(proto::timestamp(SystemTime::now() + ttl)),
        }))
    }

    async fn shutdown(
        &self,
        _: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownResponse>, Status> {
        tracing::info!("shutdown requested over the control socket");
        self.shared.shutdown.send_replace(true);
        Ok(Response::new(ShutdownResponse {}))
    }

    async fn history(
        &self,
        req: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let r = req.into_inner();
        let store = self.shared.store.clone();
        let node = r.node.clone();
        let limit = usize::try_from(r.limit).unwrap_or(usize::MAX);
        let reports = blocking(move || store.history(&node, limit)).await?;
        Ok(Response::new(HistoryResponse {
            meta: Some(NodeMeta {
                cluster: self.cluster_of(&r.node),
                node: r.node,
            }),
            reports,
        }))
    }

    async fn revoke_node(
        &self,
        req: Request<RevokeNodeRequest>,
    ) -> Result<Response<RevokeNodeResponse>, Status> {
        let node = req.into_inner().node;
        if !self.shared.config.nodes.contains_key(&node) {
            return Err(Status::not_found(format!(
                "node {node:?} is not in the topology"
            )));
        }
        let shared = self.shared.clone();
        let revoked = node.clone();
        // The system clock, not the daemon's: certificates are dated by it.
        let floor = tokio::task::spawn_blocking(move || {
            shared.node_certs.revoke(&revoked, SystemTime::now())
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(format!("cannot record the revocation: {e}")))?;
        self.shared.changes.notify(&node);
        Ok(Response::new(RevokeNodeResponse {
            not_before_floor: Some(proto::timestamp(floor)),
        }))
    }

    async fn take_trace(
        &self,
        req: Request<proto::v1::TakeTraceRequest>,
    ) -> Result<Response<proto::v1::TakeTraceResponse>, Status> {
        let spans = self.shared.traces.take(&req.into_inner().trace_id);
        Ok(Response::new(proto::v1::TakeTraceResponse {
            spans: ::telemetry::relay::span_count(&spans) as u64,
            otlp_request: ::telemetry::relay::encode(spans),
        }))
    }
}
