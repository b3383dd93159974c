//! Node prerequisites for kubeadm (`Provisioning.InstallPrerequisites`):
//! a typed, resumable list of steps the agent runs itself, so no shell
//! script (`runcmd`) is on the provisioning path.
//!
//! - [`inputs`]: the request, validated (version → repository and pin).
//! - [`key`]: the repository key, de-armoured in Rust.
//! - [`files`]: the files the steps write, rendered and compared.
//! - [`archive`]: the Ubuntu archive's sources through the mirrors.
//! - [`steps`]: each step's `check` and `apply`.
//! - [`apt`]: apt's failures, classified.
//! - [`record`]: the state file that makes a rerun resumable.
//! - [`run`]: runs the steps in order and streams progress.
//! - [`service`]: the `Provisioning` gRPC service.
//!
//! Commands and the key's download go through the agent's one runner
//! ([`crate::exec`]): argv, no shell, and the recording stand-in where the
//! "machine" is not a VM.

pub mod apt;
pub mod archive;
pub mod files;
pub mod inputs;
pub mod key;
pub mod record;
pub mod run;
pub mod service;
pub mod steps;

use crate::exec::ExecError;

pub use inputs::Inputs;

/// Why a prerequisites step failed; the message is what the host shows.
#[derive(Debug, thiserror::Error)]
pub enum PrereqError {
    /// The request cannot be acted on (bad version or URL).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The repository does not carry packages or versions asked for (every
    /// one apt named, so one run tells the whole story).
    #[error("{} not available from {repository}", missing(.packages))]
    PackageMissing {
        packages: Vec<String>,
        repository: String,
    },
    /// Another apt or dpkg process holds the lock.
    #[error("apt is locked by another process: {0}")]
    AptLocked(String),
    /// apt could not reach a repository (or the proxy).
    #[error("apt could not reach a repository: {0}")]
    AptNetwork(String),
    /// apt failed for another reason.
    #[error("apt failed: {0}")]
    AptFailed(String),
    /// A command exited unsuccessfully.
    #[error("{command} exited with status {status}")]
    CommandFailed {
        command: String,
        status: i32,
        /// The tail of its output.
        output: String,
    },
    /// A command could not be started, the key could not be downloaded,
    /// or the recording stand-in could not keep its record.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The repository key is not an OpenPGP key.
    #[error("the key from {url} is not a usable OpenPGP key: {reason}")]
    BadKey { url: String, reason: String },
    /// A file operation failed: which, on what file, and why (the
    /// workspace's one path-I/O error, [`fsio::Error`]).
    #[error(transparent)]
    Io(#[from] fsio::Error),
    /// The step was applied but its check still fails (e.g. a module that
    /// did not load), so it is not recorded as done.
    #[error("{0} was applied but is still not in place")]
    NotInPlace(&'static str),
    /// The atomic write helper failed.
    #[error(transparent)]
    Write(#[from] crate::state::StateError),
}

/// "package a is" / "packages a, b are".
fn missing(packages: &[String]) -> String {
    match packages {
        [one] => format!("package {one} is"),
        many => format!("packages {} are", many.join(", ")),
    }
}

impl PrereqError {
    /// A closure mapping an I/O error on `path` to [`PrereqError::Io`].
    pub fn io(what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self {
        let at = fsio::Error::at(what, path);
        move |source| PrereqError::Io(at(source))
    }

    /// Supporting output for the `Error.detail` field.
    pub fn detail(&self) -> String {
        match self {
            PrereqError::CommandFailed { output, .. }
            | PrereqError::Exec(ExecError::Exit { tail: output, .. }) => output.clone(),
            _ => String::new(),
        }
    }

    /// The API error code: what kind of remedy the caller should look for.
    pub fn code(&self) -> proto::v1::ErrorCode {
        use proto::v1::ErrorCode;
        match self {
            PrereqError::InvalidRequest(_) => ErrorCode::InvalidArgument,
            PrereqError::PackageMissing { .. } => ErrorCode::NotFound,
            PrereqError::AptLocked(_)
            | PrereqError::AptNetwork(_)
            | PrereqError::Exec(ExecError::Fetch { .. }) => ErrorCode::Unavailable,
            PrereqError::AptFailed(_)
            | PrereqError::CommandFailed { .. }
            | PrereqError::Exec(
                ExecError::Spawn { .. } | ExecError::Wait { .. } | ExecError::Exit { .. },
            ) => ErrorCode::CommandFailed,
            PrereqError::Exec(ExecError::Empty) => ErrorCode::InvalidArgument,
            PrereqError::Exec(ExecError::Record { .. }) => ErrorCode::Internal,
            PrereqError::BadKey { .. } | PrereqError::NotInPlace(_) => {
                ErrorCode::FailedPrecondition
            }
            PrereqError::Io(_) | PrereqError::Write(_) => ErrorCode::Internal,
        }
    }
}
