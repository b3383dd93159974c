//! Why publishing to, or serving, the platform repository failed.

use crate::exec::ExecError;

/// A failure of the platform repository or its server; every variant keeps
/// the error it came from.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// A `git` command could not run or said no (`what`: the step).
    #[error("platform repository: {what}: {source}")]
    Git {
        what: &'static str,
        #[source]
        source: ExecError,
    },
    /// A `git` command succeeded but printed something that is not what
    /// the step expects (an object id, one per file).
    #[error("platform repository: {what}: unexpected output from git: {output:?}")]
    GitOutput { what: &'static str, output: String },
    /// A file of the published tree has a path Git (or Argo CD) cannot
    /// take as is.
    #[error("platform repository: cannot publish {path:?}: {reason}")]
    BadPath { path: String, reason: &'static str },
    /// A file or directory operation failed (which, on what, why).
    #[error(transparent)]
    Io(#[from] fsio::Error),
    /// Writing a file (the server's key or certificate, a blob to hash)
    /// failed.
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    /// The serving certificate could not be made.
    #[error("cannot generate the Git server's certificate: {0}")]
    Certificate(#[source] rcgen::Error),
    /// The serving key or certificate on disk could not be used.
    #[error("the Git server's {what} is not usable: {source}")]
    Identity {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// rustls refused the serving identity.
    #[error("the Git server's TLS configuration was refused: {0}")]
    Tls(#[source] rustls::Error),
    /// The server's port could not be bound.
    #[error("cannot listen for the Git server on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl GitopsError {
    /// A `map_err` adapter for a failed `git` step.
    pub(crate) fn git(what: &'static str) -> impl FnOnce(ExecError) -> GitopsError {
        move |source| GitopsError::Git { what, source }
    }
}
