//! What an install hands helm for a pinned chart: see
//! [`ChartStore::source`].

use super::{ChartError, ChartStore, lock};
use crate::addons::Chart;
use crate::helm::{Helm, RegistryTls};

/// Where an install's chart comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The topology's registry mirror.
    Mirror,
    /// The verified archive in `$HOSTCTL_HOME/charts/`.
    Cache,
}

/// The chart argument of `helm upgrade --install` and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartSource {
    /// `oci://…/<name>` or the archive's path.
    pub reference: String,
    pub registry: RegistryTls,
    pub origin: Origin,
}

impl ChartStore {
    /// The source of `chart` for an install:
    ///
    /// 1. with a registry mirror, the mirror's copy — pushed there first
    ///    (from the cache, pulled into it if need be) unless the lock says
    ///    this mirror already holds it, so a first `up` works without a
    ///    separate `hostctl charts pull`;
    /// 2. else the cached archive, verified against the lock;
    /// 3. else the chart is pulled into the cache first, and an `up`
    ///    without network says to run `hostctl charts pull` where there is.
    ///
    /// No `helm repo add`: nothing depends on the user's helm repositories.
    pub async fn source(&self, helm: &dyn Helm, chart: &Chart) -> Result<ChartSource, ChartError> {
        if let Some(mirror) = self.mirror() {
            self.ensure_mirrored(helm, chart, mirror).await?;
            return Ok(ChartSource {
                reference: mirror.reference(chart),
                registry: mirror.tls().clone(),
                origin: Origin::Mirror,
            });
        }
        let (path, _) = self.fetch(helm, chart).await?;
        Ok(ChartSource {
            reference: path.display().to_string(),
            registry: RegistryTls::default(),
            origin: Origin::Cache,
        })
    }
}

impl ChartSource {
    /// For progress messages: `argo-cd@10.1.1 from <reference>`.
    pub fn describe(&self, chart: &Chart) -> String {
        format!("{} from {}", lock::key(chart), self.reference)
    }
}
