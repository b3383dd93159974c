//! etcd snapshots on the host: `$HOSTCTL_HOME/snapshots/<cluster>/`.
//!
//! - [`store`]: the directory layout, atomic storing, listing, retention.
//! - [`receive`]: a `SnapshotChunk` stream (pulled from a node or uploaded
//!   by one) into the store, verified as it streams.
//! - [`sink`]: the daemon's `SnapshotSink` service for scheduled uploads.
//! - [`node`]: the CLI's calls to a node's `Etcd` service (snapshot, restore).
//! - [`rpo`]: the newest snapshot's age against the recovery-point objective.

pub mod node;
pub mod receive;
pub mod rpo;
pub mod sink;
pub mod store;

pub use store::{SnapshotInfo, SnapshotStore};

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
    /// A file operation failed; nothing is left under a final name.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No such snapshot.
    #[error("no snapshot {name:?} for cluster {cluster:?} (see `hostctl etcd list {cluster}`)")]
    NotFound { cluster: String, name: String },
}

impl SnapshotError {
    /// A closure mapping an I/O error on `path`.
    pub fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| SnapshotError::Io { what, path, source }
    }
}
