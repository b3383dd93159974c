//! Why a mirror could not be set up, checked or removed; each says which
//! call or file, and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{what}: {reason}")]
    Config { what: String, reason: String },
    #[error("{call}: {reason}; check that the mirror runs (`hostctl mirrors status`)")]
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
    #[error("docker {args}: {reason}")]
    Docker { args: String, reason: String },
    #[error("the mirrors need the lab root; run `hostctl up` (or `hostctl init`) first")]
    NoLabRoot,
    #[error("{0}")]
    Pki(#[from] certs::PkiError),
}

impl MirrorError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> MirrorError {
        let path = path.into();
        move |source| MirrorError::Io { path, source }
    }
}
