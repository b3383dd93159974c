//! `kubeadm init`, `join` and `reset` on the node, driven by the host over
//! mutual TLS (`Kubeadm` service) instead of cloud-init's `runcmd`, so the
//! CA set never travels in user-data and every phase is reported.
//!
//! - [`output`]: phase markers → progress, the output's tail, failure
//!   classes (with the kubeadm sources they follow).
//! - [`runner`]: the narrow [`Kubeadm`](runner::Kubeadm) interface and the
//!   real CLI behind it.
//! - [`pki`]: placing the host's files and the rendered configuration.
//! - [`health`]: "already initialised/joined and healthy?" and the kubelet
//!   journal's tail.
//! - [`attempt`]: which command this agent started and has not seen
//!   succeed (a half-finished init looks finished otherwise).
//! - [`ops`]: init, join (with retries by class) and reset as progress
//!   streams.
//! - [`service`]: the gRPC service (one kubeadm operation at a time).
//!
//! The `kubeadm:` configuration section is part of the shared document
//! ([`proto::node_config::KubeadmSettings`]).

pub mod attempt;
pub mod health;
pub mod ops;
pub mod output;
pub mod pki;
pub mod runner;
pub mod service;

use std::path::Path;

/// Why a kubeadm operation could not be carried out. A kubeadm run that
/// fails is not an error of this type until the operation gives up: see
/// [`ops`].
#[derive(Debug, thiserror::Error)]
pub enum KubeadmError {
    /// A `PlacedFile` path is outside what the node accepts.
    #[error("refused file path {path:?}: {reason}")]
    BadPath { path: String, reason: String },
    /// The request is unusable (e.g. an empty configuration).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The node is initialised or joined but unhealthy; kubeadm would fail
    /// on the files it left, so the host must decide to reset it.
    #[error("{0}")]
    Unhealthy(String),
    /// A seed restore's note says etcd's data was restored here, but the
    /// data is gone (a `kubeadm reset` after a failed init deletes it):
    /// an init now would start an empty etcd, so it is refused.
    #[error("{0}")]
    SeedLost(String),
    /// kubeadm exited unsuccessfully and the operation gave up.
    #[error("kubeadm {command} failed ({class}) with exit status {status}")]
    Failed {
        command: &'static str,
        class: String,
        status: i32,
        /// Output tail and kubelet journal tail.
        detail: String,
    },
    /// kubeadm could not be started (or, recorded, its record not kept).
    #[error(transparent)]
    Runner(#[from] crate::exec::ExecError),
    /// A file operation failed: which, on what file, and why (the
    /// workspace's one path-I/O error, [`fsio::Error`]).
    #[error(transparent)]
    Io(#[from] fsio::Error),
    /// The atomic write helper failed.
    #[error(transparent)]
    Write(#[from] crate::state::StateError),
}

impl KubeadmError {
    /// A closure mapping an I/O error on `path` to [`KubeadmError::Io`].
    pub fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let at = fsio::Error::at(what, path);
        move |source| KubeadmError::Io(at(source))
    }

    /// The API error code: what kind of remedy the caller should look for.
    pub fn code(&self) -> proto::v1::ErrorCode {
        use proto::v1::ErrorCode;
        match self {
            KubeadmError::BadPath { .. } | KubeadmError::InvalidRequest(_) => {
                ErrorCode::InvalidArgument
            }
            KubeadmError::Unhealthy(_) | KubeadmError::SeedLost(_) => ErrorCode::FailedPrecondition,
            KubeadmError::Failed { .. } | KubeadmError::Runner(_) => ErrorCode::CommandFailed,
            KubeadmError::Io(_) | KubeadmError::Write(_) => ErrorCode::Internal,
        }
    }

    /// Supporting output for `Error.detail`.
    pub fn detail(&self) -> String {
        match self {
            KubeadmError::Failed { detail, .. } => detail.clone(),
            _ => String::new(),
        }
    }
}
