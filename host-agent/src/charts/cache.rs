//! `$HOSTCTL_HOME/charts/`: one `<name>-<version>.tgz` per pinned chart
//! (0600, in a 0700 directory) and [`super::lock::LOCK_FILE`]. A file is
//! only ever used after its digest was checked against the lock.

use super::error::ChartError;
use super::lock::{ChartLock, LOCK_FILE, LockEntry, check_cached, check_download, key, sha256};
use crate::addons::{Chart, ChartRepo};
use crate::helm::{Helm, Pull, RegistryTls};
use crate::state_file::StateFile;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The cache directory and its lock.
pub struct Cache {
    dir: PathBuf,
    lock: StateFile<ChartLock>,
}

/// Whether [`Cache::fetch`] had to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// Already cached and verified: nothing downloaded.
    Cached,
    /// Downloaded now (and recorded).
    Pulled,
}

impl Cache {
    /// The cache under `home` (nothing is created until a pull).
    pub fn new(home: &Path) -> Cache {
        let dir = home.join("charts");
        Cache {
            lock: StateFile::new(dir.join(LOCK_FILE)),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn lock_path(&self) -> &Path {
        self.lock.path()
    }

    /// The lock as it is on disk.
    pub fn lock(&self) -> Result<ChartLock, ChartError> {
        Ok(self.lock.load()?)
    }

    /// Where `chart`'s archive is kept.
    pub fn archive(&self, chart: &Chart) -> PathBuf {
        self.dir
            .join(format!("{}-{}.tgz", chart.name, chart.version))
    }

    /// The cached archive of `chart` when there is one the lock vouches
    /// for; `None` when absent or not recorded (it is then pulled again,
    /// and the new download must match a pinned digest); an error when the
    /// file differs from the record.
    pub fn verified(&self, chart: &Chart) -> Result<Option<PathBuf>, ChartError> {
        let path = self.archive(chart);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ChartError::io(&path)(e)),
        };
        let lock = self.lock()?;
        let Some(entry) = lock.entry(chart) else {
            return Ok(None);
        };
        check_cached(chart, entry, &path, &sha256(&bytes))?;
        Ok(Some(path))
    }

    /// The verified archive of `chart`, pulled with `helm` first when it is
    /// not cached. Callers serialise calls (see [`super::ChartStore`]).
    pub async fn fetch(
        &self,
        helm: &dyn Helm,
        chart: &Chart,
    ) -> Result<(PathBuf, Fetched), ChartError> {
        if let Some(path) = self.verified(chart)? {
            return Ok((path, Fetched::Cached));
        }
        self.ensure_dir()?;
        let staging = tempfile::Builder::new()
            .prefix(".pull-")
            .tempdir_in(&self.dir)
            .map_err(ChartError::io(&self.dir))?;
        let (reference, repo, source) = match chart.repo {
            ChartRepo::Http(url) => (chart.name.to_owned(), Some(url), url.to_owned()),
            ChartRepo::Oci(url) => {
                let r = format!("{url}/{}", chart.name);
                (r.clone(), None, r)
            }
        };
        helm.pull(&Pull {
            chart: &reference,
            repo,
            version: chart.version,
            destination: staging.path(),
            registry: &RegistryTls::default(),
        })
        .await
        .map_err(|source| ChartError::Pull {
            chart: key(chart),
            cache: self.dir.clone(),
            source: Box::new(source),
        })?;
        let downloaded = downloaded_archive(staging.path(), chart)?;
        let bytes = std::fs::read(&downloaded).map_err(ChartError::io(&downloaded))?;
        let got = sha256(&bytes);
        check_download(chart, self.lock()?.entry(chart), self.lock_path(), &got)?;
        let path = self.archive(chart);
        crate::fsutil::write_atomic(&path, &bytes, 0o600).map_err(|e| ChartError::Io {
            path: e.path,
            source: e.source,
        })?;
        let entry = LockEntry {
            sha256: got,
            source,
            pulled_at: jiff::Timestamp::now().to_string(),
            mirrored: Default::default(),
        };
        self.lock
            .update(|lock| {
                lock.charts.insert(key(chart), entry);
            })
            .await?;
        Ok((path, Fetched::Pulled))
    }

    /// Records that `remote` holds `chart` (manifest `digest`).
    pub async fn record_push(
        &self,
        chart: &Chart,
        remote: &str,
        digest: String,
    ) -> Result<(), ChartError> {
        self.lock
            .update(|lock| {
                if let Some(entry) = lock.charts.get_mut(&key(chart)) {
                    entry.mirrored.insert(remote.to_owned(), digest);
                }
            })
            .await?;
        Ok(())
    }

    /// The cache directory, 0700 whatever the umask.
    fn ensure_dir(&self) -> Result<(), ChartError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .and_then(|()| {
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(ChartError::io(&self.dir))
    }
}

/// The archive `helm pull` left in `dir`: `<name>-<version>.tgz`, or the
/// only `.tgz` there.
fn downloaded_archive(dir: &Path, chart: &Chart) -> Result<PathBuf, ChartError> {
    let expected = dir.join(format!("{}-{}.tgz", chart.name, chart.version));
    if expected.is_file() {
        return Ok(expected);
    }
    let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(ChartError::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
        .collect();
    match (archives.pop(), archives.is_empty()) {
        (Some(only), true) => Ok(only),
        _ => Err(ChartError::NoArchive {
            chart: key(chart),
            dir: dir.to_path_buf(),
        }),
    }
}
