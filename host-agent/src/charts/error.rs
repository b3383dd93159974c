//! Why a chart could not be cached, verified, pushed or resolved; each
//! message names the chart and what to do.

use crate::helm::HelmError;
use std::path::PathBuf;

/// A chart cache failure.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error(
        "cannot download chart {chart} ({source}); run `hostctl charts pull` on a machine with network access to fill {} first",
        cache.display()
    )]
    Pull {
        chart: String,
        cache: PathBuf,
        #[source]
        source: Box<HelmError>,
    },
    #[error("helm pull of chart {chart} left no chart archive in {}", dir.display())]
    NoArchive { chart: String, dir: PathBuf },
    #[error(
        "chart {chart}: the download's digest is {got}, but {expected} is pinned for it; the upstream archive changed or the download is corrupt: check the pin (`digest` in the add-on catalogue, or charts::CILIUM) before changing it"
    )]
    PinnedMismatch {
        chart: String,
        expected: String,
        got: String,
    },
    #[error(
        "chart {chart}: the download's digest is {got}, but {} recorded {expected} when it was first pulled; the upstream archive changed: if that is expected, remove its entry from the lock file and run `hostctl charts pull` again",
        lock.display()
    )]
    LockMismatch {
        chart: String,
        lock: PathBuf,
        expected: String,
        got: String,
    },
    #[error(
        "{} (chart {chart}) was changed since it was pulled: its digest is {got}, the lock records {expected}; delete it and run `hostctl charts pull` again",
        path.display()
    )]
    Tampered {
        chart: String,
        path: PathBuf,
        expected: String,
        got: String,
    },
    #[error(
        "cannot push chart {chart} to {remote} ({source}); check that the registry mirror runs and helm is logged in to it (`helm registry login`)"
    )]
    Push {
        chart: String,
        remote: String,
        #[source]
        source: Box<HelmError>,
    },
    #[error("chart cache {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] Box<crate::state_file::StateFileError>),
}

impl From<crate::state_file::StateFileError> for ChartError {
    fn from(e: crate::state_file::StateFileError) -> ChartError {
        ChartError::Lock(Box::new(e))
    }
}

impl ChartError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ChartError + use<> {
        let path = path.to_path_buf();
        move |source| ChartError::Io { path, source }
    }
}
