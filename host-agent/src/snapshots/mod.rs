//! etcd snapshots on the host: `$HOSTCTL_HOME/snapshots/<cluster>/`.
//!
//! - [`store`]: the directory layout, listing, retention, leftovers.
//! - [`incoming`]: one snapshot being received: host-chosen name, host
//!   receipt time, never replacing a stored file.
//! - [`receive`]: a `SnapshotChunk` stream (pulled from a node or uploaded
//!   by one) into the store, verified as it streams.
//! - [`sink`]: the daemon's `SnapshotSink` service for scheduled uploads.
//! - [`node`]: the CLI's calls to a node's `Etcd` service (snapshot, restore).
//! - [`rpo`]: the newest snapshot's age against the recovery-point objective.

pub mod incoming;
pub mod node;
pub mod receive;
pub mod rpo;
pub mod sink;
pub mod store;

pub use store::{SnapshotInfo, SnapshotStore};

/// Who sent a snapshot, as the host knows it: from the peer certificate and
/// the topology for uploads ([`sink`]), from the topology entry the CLI
/// dialled for pulls ([`node`]). Never read from the stream's metadata: a
/// control plane that could name the cluster could plant a snapshot that a
/// later restore sends to another cluster (issue 13, item 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The cluster the snapshot is stored under.
    pub cluster: String,
    /// The control-plane node that sent it.
    pub node: String,
}

/// Failures of the host's snapshot handling.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes failed the trailing-hash rule or the sender's trailer.
    #[error("snapshot refused: {0}")]
    Integrity(#[from] proto::snapshot::IntegrityError),
    /// The stream did not follow meta → data → trailer.
    #[error("malformed snapshot stream: {0}")]
    Protocol(String),
    /// The node reported a failure instead of data.
    #[error("the node could not take the snapshot: {0}")]
    Node(String),
    /// The stream broke.
    #[error("snapshot stream: {}", .0.message())]
    Transport(tonic::Status),
    /// A file operation failed; nothing is left under a final name (the
    /// workspace's one path-I/O error, [`fsio::Error`]).
    #[error(transparent)]
    Io(#[from] fsio::Error),
    /// The stream's metadata names another cluster or node than the one the
    /// host knows sent it.
    #[error(
        "snapshot refused: it says it is of cluster {claimed_cluster:?}, taken by {claimed_node:?}, \
         but it comes from {node:?}, the control plane of {cluster:?}"
    )]
    WrongSource {
        cluster: String,
        node: String,
        claimed_cluster: String,
        claimed_node: String,
    },
    /// Every name the host tried for a new snapshot is taken (the store
    /// never replaces a stored snapshot).
    #[error("no free snapshot name for {base} in {} after {tries} tries", dir.display())]
    NameTaken {
        dir: std::path::PathBuf,
        base: String,
        tries: usize,
    },
    /// No such snapshot.
    #[error("no snapshot {name:?} for cluster {cluster:?} (see `hostctl etcd list {cluster}`)")]
    NotFound { cluster: String, name: String },
}

impl SnapshotError {
    /// A closure mapping an I/O error on `path`.
    pub fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let at = fsio::Error::at(what, path);
        move |source| SnapshotError::Io(at(source))
    }
}
