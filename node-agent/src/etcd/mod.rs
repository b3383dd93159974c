//! etcd snapshots and restores on a control-plane node.
//!
//! - [`client`]: a TLS client with kubeadm's etcd client certificate.
//! - [`raw`]: etcd's snapshot stream with its pieces as `Bytes`.
//! - [`snapshot`]: etcd's `Maintenance.Snapshot` stream as `SnapshotChunk`s,
//!   verified as it passes.
//! - [`local`]: snapshots the schedule keeps on the node until shipped.
//! - [`schedule`]: the autonomous snapshot loop and the shipper.
//! - [`restore`]: the static-pod choreography of a restore.
//! - [`seeded`]: the note a restore onto a new node leaves for kubeadm.
//! - [`service`]: the `Etcd` gRPC service.

pub mod client;
pub mod file;
pub mod local;
pub mod raw;
pub mod restore;
pub mod schedule;
pub mod seeded;
pub mod service;
pub mod snapshot;

use std::path::PathBuf;

pub use client::EtcdTarget;

/// Failures of snapshot and restore on the node.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// kubeadm's etcd client certificate is missing or unreadable.
    #[error("cannot read etcd client credentials {}: {source}", path.display())]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// etcd refused or the connection broke.
    #[error("etcd {what}: {}", telemetry::error_chain::chain(source))]
    Etcd {
        what: &'static str,
        #[source]
        source: etcd_client::Error,
    },
    /// The snapshot's bytes failed the trailing-hash check.
    #[error(transparent)]
    Integrity(#[from] proto::snapshot::IntegrityError),
    /// A file operation failed: which, on what file, and why (the
    /// workspace's one path-I/O error, [`fsio::Error`]).
    #[error(transparent)]
    Io(#[from] fsio::Error),
    /// The receiver of the stream went away.
    #[error("the receiver of the snapshot stream went away")]
    ReceiverGone,
}

impl EtcdError {
    /// A closure mapping an I/O error on `path` to [`EtcdError::Io`].
    pub fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let at = fsio::Error::at(what, path);
        move |source| EtcdError::Io(at(source))
    }
}
