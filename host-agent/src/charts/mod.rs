//! Charts without the internet at install time (docs/platform.md, "Charts
//! offline"). Every chart hostctl installs is pinned ([`pinned`]: the
//! add-on catalogue's and Cilium's); `hostctl charts pull` downloads each
//! once into `$HOSTCTL_HOME/charts/` ([`cache`]), recording its sha256 in
//! `charts.lock.json` ([`lock`]), and when the topology names a registry
//! mirror (the spec's Harbor) pushes it there as an OCI artifact under
//! [`MIRROR_PATH`]. Installs ask [`ChartStore::source`] what to hand helm
//! ([`source`]): the mirror's copy, else the verified cached archive, else
//! a pull into the cache first.

pub mod cache;
pub mod error;
pub mod lock;
pub mod pull;
pub mod source;

pub use cache::{Cache, Fetched};
pub use error::ChartError;
pub use pull::{ChartState, PullReport, pull_all, states};
pub use source::{ChartSource, Origin};

use crate::addons::{Chart, ChartRepo, catalogue};
use crate::cluster_config::versions;
use crate::helm::{Helm, RegistryTls};
use std::path::{Path, PathBuf};

/// Cilium's chart, as the catalogue entries pin theirs.
pub const CILIUM: Chart = Chart {
    repo: ChartRepo::Http(versions::CILIUM_CHART_REPO),
    name: "cilium",
    version: versions::CILIUM_CHART_VERSION,
    digest: None,
};

/// Every chart hostctl installs, once each: Cilium, then the catalogue's.
pub fn pinned() -> Vec<Chart> {
    let mut charts = vec![CILIUM];
    for chart in catalogue().iter().filter_map(|a| a.chart) {
        if !charts.contains(&chart) {
            charts.push(chart);
        }
    }
    charts
}

/// The repository path under the registry mirror that holds the charts
/// (`oci://<mirror>/hostctl-charts/<name>:<version>`): one Harbor project
/// for everything hostctl put there, apart from the images it mirrors.
pub const MIRROR_PATH: &str = "hostctl-charts";

/// The registry mirror charts are pushed to and installed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `oci://host[:port][/path]/hostctl-charts`.
    remote: String,
    tls: RegistryTls,
}

impl Mirror {
    /// From the topology's `mirrors.registryMirror` URL (`http://` means
    /// `--plain-http`); `ca_file` is the CA that signed its certificate
    /// when the system does not trust it.
    pub fn new(url: &str, ca_file: Option<PathBuf>) -> Mirror {
        let (rest, plain_http) = match url.strip_prefix("http://") {
            Some(rest) => (rest, true),
            None => (url.strip_prefix("https://").unwrap_or(url), false),
        };
        Mirror {
            remote: format!("oci://{}/{MIRROR_PATH}", rest.trim_end_matches('/')),
            tls: RegistryTls {
                ca_file,
                plain_http,
                registry_config: None,
            },
        }
    }

    /// The topology's mirror, if it names one. Managed mirrors put the
    /// charts in Harbor's OCI project [`MIRROR_PATH`] at the host's address,
    /// its certificate signed by the lab root, pushed with the admin
    /// credentials `mirrors up` writes for helm (both under `home`).
    pub fn from_topology(
        topology: &topology::Topology,
        host: std::net::Ipv4Addr,
        ca_file: Option<PathBuf>,
        home: &Path,
    ) -> Option<Mirror> {
        if topology.managed_mirrors() {
            let harbor = crate::mirrors::Endpoints { host }.harbor();
            let lab_ca = crate::mirrors::lab_ca_file(home);
            let mut mirror = Mirror::new(&harbor, Some(ca_file.unwrap_or(lab_ca)));
            mirror.tls.registry_config =
                Some(crate::mirrors::layout::Layout::new(home).helm_registry_config());
            return Some(mirror);
        }
        topology
            .mirrors
            .as_ref()
            .and_then(|m| m.registry_mirror.as_ref())
            .map(|url| Mirror::new(url.as_str(), ca_file))
    }

    /// What `helm push` is given.
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// Where `chart` is in the mirror (helm adds `:version`).
    pub fn reference(&self, chart: &Chart) -> String {
        format!("{}/{}", self.remote, chart.name)
    }

    pub fn tls(&self) -> &RegistryTls {
        &self.tls
    }
}

/// The cache and the mirror of one home, shared by the steps of one `up`:
/// downloads and pushes are serialised, so two clusters' installs of the
/// same chart pull it once.
pub struct ChartStore {
    cache: Cache,
    mirror: Option<Mirror>,
    busy: tokio::sync::Mutex<()>,
}

impl ChartStore {
    pub fn new(home: &Path, mirror: Option<Mirror>) -> ChartStore {
        ChartStore {
            cache: Cache::new(home),
            mirror,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn mirror(&self) -> Option<&Mirror> {
        self.mirror.as_ref()
    }

    /// The verified cached archive, pulled first when needed.
    pub async fn fetch(
        &self,
        helm: &dyn Helm,
        chart: &Chart,
    ) -> Result<(PathBuf, Fetched), ChartError> {
        let _busy = self.busy.lock().await;
        self.cache.fetch(helm, chart).await
    }

    /// Pushes the cached archive of `chart` to the mirror (idempotent: the
    /// same archive is the same artifact) and records it; returns the
    /// manifest digest. Fetches the archive first when needed.
    pub async fn push(
        &self,
        helm: &dyn Helm,
        chart: &Chart,
        mirror: &Mirror,
    ) -> Result<String, ChartError> {
        let _busy = self.busy.lock().await;
        self.push_now(helm, chart, mirror).await
    }

    /// [`Self::push`] unless the lock records that `mirror` holds `chart`
    /// (checked under the same lock, so concurrent installs push once).
    pub async fn ensure_mirrored(
        &self,
        helm: &dyn Helm,
        chart: &Chart,
        mirror: &Mirror,
    ) -> Result<(), ChartError> {
        let _busy = self.busy.lock().await;
        let held = self
            .cache
            .lock()?
            .entry(chart)
            .is_some_and(|e| e.mirrored.contains_key(mirror.remote()));
        if !held {
            self.push_now(helm, chart, mirror).await?;
        }
        Ok(())
    }

    async fn push_now(
        &self,
        helm: &dyn Helm,
        chart: &Chart,
        mirror: &Mirror,
    ) -> Result<String, ChartError> {
        let (archive, _) = self.cache.fetch(helm, chart).await?;
        let digest = helm
            .push(&archive, mirror.remote(), mirror.tls())
            .await
            .map_err(|source| ChartError::Push {
                chart: lock::key(chart),
                remote: mirror.remote().to_owned(),
                source: Box::new(source),
            })?;
        self.cache
            .record_push(chart, mirror.remote(), digest.clone())
            .await?;
        Ok(digest)
    }
}

#[cfg(test)]
mod tests;
