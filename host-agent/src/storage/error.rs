//! Why the object store could not be set up, checked, written or read;
//! each says which call or file, and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{what}: {reason}")]
    Config { what: String, reason: String },
    #[error("{call}: {reason}; check that the object store runs (`hostctl storage status`)")]
    Unreachable { call: String, reason: String },
    #[error("{call} answered {status}: {body}")]
    Api {
        call: String,
        status: u16,
        body: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the object store's server `garage` was not found; install it \
         (`cargo install garage --locked --version {version} --no-default-features --features bundled-libs,lmdb`) \
         or set HOSTCTL_GARAGE to its path"
    )]
    NoServer { version: &'static str },
    #[error("the object store did not become ready within {secs}s: {last}; its log is {log}")]
    NotReady {
        secs: u64,
        last: String,
        log: PathBuf,
    },
    #[error(
        "{object}: the stored copy's sha256 is {actual}, the host's file has {expected}; \
         the upload is not trusted, run the command again"
    )]
    HashMismatch {
        object: String,
        expected: String,
        actual: String,
    },
    #[error("the object store has no key {0:?}; run `hostctl storage up`")]
    NoKey(String),
    #[error(transparent)]
    Fs(#[from] fsio::Error),
    #[error(transparent)]
    Json(#[from] fsio::JsonError),
    /// The store's HTTP API (shared with the mirrors' client) failed.
    #[error("{0}")]
    Mirror(crate::mirrors::error::MirrorError),
}

impl From<crate::mirrors::error::MirrorError> for StorageError {
    /// The shared client's "not answering" names the mirrors; for the
    /// store it must name the store.
    fn from(e: crate::mirrors::error::MirrorError) -> Self {
        match e {
            crate::mirrors::error::MirrorError::Unreachable { call, reason } => {
                StorageError::Unreachable { call, reason }
            }
            other => StorageError::Mirror(other),
        }
    }
}

impl StorageError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io { path, source }
    }
}
