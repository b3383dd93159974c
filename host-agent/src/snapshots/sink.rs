//! The daemon's `SnapshotSink`: control-plane agents upload the snapshots
//! their schedule took. Only a node certificate (role `hostctl:node`) may
//! call, and only a node the topology makes a cluster's control plane. The
//! cluster and node a snapshot is stored under are derived from the
//! caller's certificate (CN) and the daemon's topology, never from the
//! metadata it sends; metadata that disagrees is refused.

use std::collections::BTreeMap;

use proto::v1::snapshot_sink_server::SnapshotSink;
use proto::v1::{SnapshotChunk, UploadSnapshotResponse};
use tonic::{Request, Response, Status, Streaming};

use super::receive::receive;
use super::store::SnapshotStore;
use super::{SnapshotError, Source};
use crate::daemon::DaemonConfig;
use crate::daemon::authz::HOST_UPLOAD_SNAPSHOT;
use crate::daemon::nodecerts;

/// Why a caller may not upload snapshots at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefused {
    #[error("{caller} is not a node of the topology")]
    UnknownNode { caller: String },
    #[error("{caller} is not the control plane of cluster {cluster:?} ({control_plane})")]
    NotControlPlane {
        caller: String,
        cluster: String,
        /// "<name> is" or "it has none".
        control_plane: String,
    },
}

/// Who may upload for which cluster, from the topology: node → cluster and
/// cluster → control plane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uploaders {
    node_cluster: BTreeMap<String, String>,
    control_planes: BTreeMap<String, String>,
}

impl Uploaders {
    /// From explicit maps (node → cluster, cluster → control plane).
    pub fn new(
        node_cluster: BTreeMap<String, String>,
        control_planes: BTreeMap<String, String>,
    ) -> Self {
        Uploaders {
            node_cluster,
            control_planes,
        }
    }

    /// From a daemon's configuration.
    pub fn from_config(config: &DaemonConfig) -> Self {
        Self::new(
            config
                .nodes
                .iter()
                .map(|(n, e)| (n.clone(), e.cluster.clone()))
                .collect(),
            config.control_planes.clone(),
        )
    }

    /// The source a snapshot uploaded by `caller` (a certificate CN) is
    /// stored as: its cluster by the topology, if it is that cluster's
    /// control plane.
    pub fn source_of(&self, caller: &str) -> Result<Source, UploadRefused> {
        let cluster = self
            .node_cluster
            .get(caller)
            .ok_or_else(|| UploadRefused::UnknownNode {
                caller: caller.to_owned(),
            })?;
        match self.control_planes.get(cluster) {
            Some(cp) if cp == caller => Ok(Source {
                cluster: cluster.clone(),
                node: caller.to_owned(),
            }),
            other => Err(UploadRefused::NotControlPlane {
                caller: caller.to_owned(),
                cluster: cluster.clone(),
                control_plane: other
                    .map_or_else(|| "it has none".to_owned(), |c| format!("{c} is")),
            }),
        }
    }
}

/// The sink of one daemon.
pub struct SinkService {
    store: SnapshotStore,
    uploaders: Uploaders,
    node_certs: std::sync::Arc<crate::daemon::nodecerts::NodeCerts>,
    /// The home whose object store (if `storage up` ran there) gets a copy
    /// of every snapshot received.
    offsite_home: Option<std::path::PathBuf>,
}

impl SinkService {
    /// Stores into `store` for the uploaders the topology allows.
    pub fn new(
        store: SnapshotStore,
        uploaders: Uploaders,
        node_certs: std::sync::Arc<crate::daemon::nodecerts::NodeCerts>,
    ) -> Self {
        SinkService {
            store,
            uploaders,
            node_certs,
            offsite_home: None,
        }
    }

    /// Also copies each received snapshot to `home`'s object store.
    pub fn with_offsite(mut self, home: std::path::PathBuf) -> Self {
        self.offsite_home = Some(home);
        self
    }

    /// Copies `cluster`'s snapshots to the object store in the background;
    /// the node's upload is answered without waiting, and a failure is
    /// logged (the next snapshot, or `hostctl etcd snapshot`, retries).
    fn copy_offsite(&self, cluster: &str) {
        let Some(home) = &self.offsite_home else {
            return;
        };
        let client = match crate::storage::service::host_client_of(home) {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(cluster, "snapshot not copied to the object store: {e}");
                return;
            }
        };
        let (store, cluster) = (self.store.clone(), cluster.to_owned());
        tokio::spawn(async move {
            match crate::storage::offsite::upload_etcd(&client, &store, &cluster).await {
                Ok(copied) => tracing::info!(
                    cluster,
                    sent = copied.iter().filter(|u| u.sent).count(),
                    "snapshots copied to the object store"
                ),
                Err(e) => tracing::warn!(cluster, "snapshot not copied to the object store: {e}"),
            }
        });
    }
}

fn status(e: SnapshotError) -> Status {
    match e {
        SnapshotError::WrongSource { .. } => Status::permission_denied(e.to_string()),
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
        let caller = nodecerts::authorize(&self.node_certs, &req, HOST_UPLOAD_SNAPSHOT)?;
        let source = self.uploaders.source_of(&caller.name).map_err(|e| {
            tracing::warn!(caller = caller.name, "snapshot upload refused: {e}");
            Status::permission_denied(e.to_string())
        })?;
        match receive(&self.store, req.into_inner(), &source).await {
            Ok(stored) => {
                tracing::info!(
                    node = caller.name,
                    cluster = source.cluster,
                    file = stored.info.file,
                    already = stored.already_stored,
                    "snapshot uploaded"
                );
                self.copy_offsite(&source.cluster);
                Ok(Response::new(UploadSnapshotResponse {
                    stored_as: stored.info.file,
                    already_stored: stored.already_stored,
                }))
            }
            Err(e) => {
                tracing::warn!(caller = caller.name, "snapshot upload failed: {e}");
                Err(status(e))
            }
        }
    }
}
