//! The CLI's typed client for the daemon's Control socket, so commands
//! (`status`, `up`, `down`) never handle raw gRPC types or URIs.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use proto::v1::control_client::ControlClient as RawClient;
use proto::v1::{
    HistoryRequest, IssueTokenRequest, NodeStatus, RevokeNodeRequest, ShutdownRequest,
    StatusRequest, StatusResponse, StoredReport, WatchNodeRequest,
};
use tonic::transport::{Channel, Endpoint};

/// Bound on every Control call: the daemon is local, so a slow answer
/// means a wedged daemon, and the CLI should say so rather than hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Failures talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the daemon at {path}: {reason}")]
    Connect { path: PathBuf, reason: String },
    #[error("the daemon refused {call}: {status}")]
    Call {
        call: &'static str,
        status: Box<tonic::Status>,
    },
}

/// An enrolment token as the daemon issued it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The secret; goes into the node's user-data and nowhere else.
    pub token: String,
    pub expires_at: Option<SystemTime>,
}

/// A connection to `$HOSTCTL_HOME/daemon.sock`.
#[derive(Debug, Clone)]
pub struct ControlClient {
    inner: RawClient<Channel>,
}

impl ControlClient {
    /// Connects to the socket at `path` (fails fast if nobody listens).
    pub async fn connect(path: &Path) -> Result<ControlClient, ClientError> {
        let err = |reason: String| ClientError::Connect {
            path: path.to_owned(),
            reason,
        };
        let uri = format!("unix://{}", path.display());
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| err(e.to_string()))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_TIMEOUT)
            .connect()
            .await
            .map_err(|e| err(telemetry::error_chain::chain(&e)))?;
        Ok(ControlClient {
            inner: RawClient::new(channel),
        })
    }

    /// Every node's latest report, connection and staleness, plus the
    /// daemon's endpoints.
    pub async fn status(&mut self) -> Result<StatusResponse, ClientError> {
        self.inner
            .status(StatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(call("Status"))
    }

    /// `node`'s status now and after each change (`Control.WatchNode`);
    /// the stream has no end of its own, so the caller bounds its wait.
    pub async fn watch_node(
        &mut self,
        node: &str,
    ) -> Result<tonic::Streaming<NodeStatus>, ClientError> {
        self.inner
            .watch_node(WatchNodeRequest {
                node: node.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(call("WatchNode"))
    }

    /// A single-use enrolment token for `node`, valid for `ttl`.
    pub async fn issue_token(
        &mut self,
        node: &str,
        ttl: Duration,
    ) -> Result<IssuedToken, ClientError> {
        let ttl_seconds = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX).max(1);
        let r = self
            .inner
            .issue_token(IssueTokenRequest {
                node: node.to_owned(),
                ttl_seconds,
            })
            .await
            .map_err(call("IssueToken"))?
            .into_inner();
        Ok(IssuedToken {
            token: r.token,
            expires_at: r.expires_at.as_ref().and_then(proto::system_time),
        })
    }

    /// Revokes every certificate `node` holds; returns the new floor.
    pub async fn revoke_node(&mut self, node: &str) -> Result<SystemTime, ClientError> {
        let r = self
            .inner
            .revoke_node(RevokeNodeRequest {
                node: node.to_owned(),
            })
            .await
            .map_err(call("RevokeNode"))?
            .into_inner();
        Ok(r.not_before_floor
            .as_ref()
            .and_then(proto::system_time)
            .unwrap_or(SystemTime::UNIX_EPOCH))
    }

    /// Asks the daemon to stop gracefully (it answers first).
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        self.inner
            .shutdown(ShutdownRequest {})
            .await
            .map(|_| ())
            .map_err(call("Shutdown"))
    }

    /// The stored reports of `node`, oldest first (`limit` 0 = all).
    pub async fn history(
        &mut self,
        node: &str,
        limit: u32,
    ) -> Result<Vec<StoredReport>, ClientError> {
        self.inner
            .history(HistoryRequest {
                node: node.to_owned(),
                limit,
            })
            .await
            .map(|r| r.into_inner().reports)
            .map_err(call("History"))
    }

    /// Removes and returns the spans node agents relayed for `trace_id`
    /// (protobuf-encoded OTLP; see [`::telemetry::relay::decode`]).
    pub async fn take_trace(&mut self, trace_id: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.inner
            .take_trace(proto::v1::TakeTraceRequest {
                trace_id: trace_id.to_vec(),
            })
            .await
            .map(|r| r.into_inner().otlp_request)
            .map_err(call("TakeTrace"))
    }
}

fn call(name: &'static str) -> impl FnOnce(tonic::Status) -> ClientError {
    move |status| ClientError::Call {
        call: name,
        status: Box::new(status),
    }
}
