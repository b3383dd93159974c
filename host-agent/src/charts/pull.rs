//! `hostctl charts pull|list` as library functions: the chart list is a
//! parameter (production passes [`super::pinned`]; tests pass charts
//! served on loopback), so nothing in production reads an override.

use super::{ChartError, ChartStore, Fetched, lock};
use crate::addons::{Chart, ChartRepo};
use crate::helm::Helm;
use serde::Serialize;

/// What `charts pull` did for one chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullReport {
    pub name: &'static str,
    pub version: &'static str,
    /// `pulled` (downloaded now) or `cached` (already there and verified).
    pub action: &'static str,
    pub sha256: String,
    /// The mirror it was pushed to, and the manifest digest.
    pub pushed_to: Option<String>,
    pub mirror_digest: Option<String>,
}

/// Fetches every chart of `charts` not yet cached and verified and, with a
/// mirror, pushes each there. Stops at the first failure (earlier charts
/// stay cached: a rerun continues).
pub async fn pull_all(
    store: &ChartStore,
    helm: &dyn Helm,
    charts: &[Chart],
    say: &(dyn Fn(&str) + Send + Sync),
) -> Result<Vec<PullReport>, ChartError> {
    let mut reports = Vec::new();
    for chart in charts {
        let (path, fetched) = store.fetch(helm, chart).await?;
        let action = match fetched {
            Fetched::Pulled => "pulled",
            Fetched::Cached => "cached",
        };
        say(&format!(
            "{} {action}: {}",
            lock::key(chart),
            path.display()
        ));
        let (pushed_to, mirror_digest) = match store.mirror() {
            Some(mirror) => {
                let digest = store.push(helm, chart, mirror).await?;
                say(&format!(
                    "{} pushed to {} ({digest})",
                    lock::key(chart),
                    mirror.reference(chart)
                ));
                (Some(mirror.remote().to_owned()), Some(digest))
            }
            None => (None, None),
        };
        let sha256 = store
            .cache()
            .lock()?
            .entry(chart)
            .map(|e| e.sha256.clone())
            .unwrap_or_default();
        reports.push(PullReport {
            name: chart.name,
            version: chart.version,
            action,
            sha256,
            pushed_to,
            mirror_digest,
        });
    }
    Ok(reports)
}

/// One row of `charts list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChartState {
    pub name: &'static str,
    pub version: &'static str,
    /// The upstream repository.
    pub source: String,
    /// Cached and matching the lock.
    pub cached: bool,
    /// Why a present file is not usable (changed since its pull).
    pub problem: Option<String>,
    /// The recorded `sha256:…`.
    pub sha256: Option<String>,
    /// `None` without a mirror; else whether the lock records a push there.
    pub mirrored: Option<bool>,
}

/// The state of every chart of `charts`, from the disk only (no network).
pub fn states(store: &ChartStore, charts: &[Chart]) -> Result<Vec<ChartState>, ChartError> {
    let lock = store.cache().lock()?;
    let mut rows = Vec::new();
    for chart in charts {
        let entry = lock.entry(chart);
        let (cached, problem) = match store.cache().verified(chart) {
            Ok(found) => (found.is_some(), None),
            Err(e @ (ChartError::Tampered { .. } | ChartError::Io { .. })) => {
                (false, Some(e.to_string()))
            }
            Err(other) => return Err(other),
        };
        rows.push(ChartState {
            name: chart.name,
            version: chart.version,
            source: match chart.repo {
                ChartRepo::Http(url) => url.to_owned(),
                ChartRepo::Oci(url) => format!("{url}/{}", chart.name),
            },
            cached,
            problem,
            sha256: entry.map(|e| e.sha256.clone()),
            mirrored: store
                .mirror()
                .map(|m| entry.is_some_and(|e| e.mirrored.contains_key(m.remote()))),
        });
    }
    Ok(rows)
}
