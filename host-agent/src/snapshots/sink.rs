//! The daemon's `SnapshotSink`: control-plane agents upload the snapshots
//! their schedule took. Only a node certificate (role `hostctl:node`) may
//! call, and only for the cluster whose control plane it is by the
//! topology — the caller is known from its certificate, never from the
//! metadata it sends.

use std::collections::BTreeMap;
use std::path::Path;

use proto::v1::snapshot_sink_server::SnapshotSink;
use proto::v1::{SnapshotChunk, UploadSnapshotResponse};
use tonic::{Request, Response, Status, Streaming};

use super::SnapshotError;
use super::receive::receive;
use super::store::SnapshotStore;
use crate::daemon::authz::{self, HOST_UPLOAD_SNAPSHOT};

/// The sink of one daemon.
pub struct SinkService {
    store: SnapshotStore,
    /// cluster → its control-plane node.
    control_planes: BTreeMap<String, String>,
}

impl SinkService {
    /// Stores under `home`; `control_planes` maps cluster → node.
    pub fn new(home: &Path, control_planes: BTreeMap<String, String>) -> Self {
        SinkService {
            store: SnapshotStore::new(home),
            control_planes,
        }
    }
}

/// Why `caller` may not store a snapshot of `cluster` taken by `node`.
pub fn refusal(
    control_planes: &BTreeMap<String, String>,
    caller: &str,
    cluster: &str,
    node: &str,
) -> Option<String> {
    match control_planes.get(cluster) {
        None => Some(format!("cluster {cluster:?} is not in the topology")),
        Some(cp) if cp != caller => Some(format!(
            "{caller} is not the control plane of cluster {cluster:?} ({cp} is)"
        )),
        Some(_) if node != caller => Some(format!(
            "the snapshot says it was taken by {node:?}, the certificate says {caller:?}"
        )),
        Some(_) => None,
    }
}

fn status(e: SnapshotError) -> Status {
    match e {
        SnapshotError::Integrity(_) | SnapshotError::Protocol(_) => {
            Status::invalid_argument(e.to_string())
        }
        SnapshotError::Transport(s) => s,
        other => Status::internal(other.to_string()),
    }
}

#[tonic::async_trait]
impl SnapshotSink for SinkService {
    async fn upload_snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<UploadSnapshotResponse>, Status> {
        let caller = authz::authorize(&req, HOST_UPLOAD_SNAPSHOT)?;
        let denied = std::sync::Mutex::new(None);
        let check = |meta: &proto::v1::SnapshotMeta| match refusal(
            &self.control_planes,
            &caller.name,
            &meta.cluster,
            &meta.node,
        ) {
            None => Ok(()),
            Some(reason) => {
                if let Ok(mut d) = denied.lock() {
                    *d = Some(reason.clone());
                }
                Err(SnapshotError::Protocol(reason))
            }
        };
        match receive(&self.store, req.into_inner(), &check).await {
            Ok(stored) => {
                tracing::info!(
                    node = caller.name,
                    file = stored.info.file,
                    already = stored.already_stored,
                    "snapshot uploaded"
                );
                Ok(Response::new(UploadSnapshotResponse {
                    stored_as: stored.info.file,
                    already_stored: stored.already_stored,
                }))
            }
            Err(e) => {
                let reason = denied.lock().ok().and_then(|mut d| d.take());
                if let Some(reason) = reason {
                    tracing::warn!(caller = caller.name, "snapshot upload refused: {reason}");
                    return Err(Status::permission_denied(reason));
                }
                tracing::warn!(caller = caller.name, "snapshot upload failed: {e}");
                Err(status(e))
            }
        }
    }
}
