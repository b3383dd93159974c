//! `charts.lock.json`: the sha256 of every chart archive hostctl pulled,
//! recorded on its first pull (trust on first use, unless the catalogue
//! pins a digest) and held to ever after — by a cached file before each
//! use, and by a re-download. Also which registry mirrors hold it.

use super::error::ChartError;
use crate::addons::Chart;
use crate::state_file::StateDocument;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The lock file's name in the cache directory.
pub const LOCK_FILE: &str = "charts.lock.json";

/// The lock document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartLock {
    /// By `name@version`.
    #[serde(default)]
    pub charts: BTreeMap<String, LockEntry>,
}

/// One pulled chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockEntry {
    /// `sha256:<hex>` of the archive.
    pub sha256: String,
    /// Where it was pulled from.
    pub source: String,
    /// RFC 3339.
    pub pulled_at: String,
    /// Registry mirror (`oci://host/path`) → the manifest digest helm
    /// printed when it pushed the archive there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mirrored: BTreeMap<String, String>,
}

impl StateDocument for ChartLock {
    const MODE: u32 = 0o600;
    const IF_DAMAGED: &'static str = "remove it and run `hostctl charts pull` again (every chart is downloaded and recorded anew)";
}

impl ChartLock {
    pub fn entry(&self, chart: &Chart) -> Option<&LockEntry> {
        self.charts.get(&key(chart))
    }
}

/// `name@version`.
pub fn key(chart: &Chart) -> String {
    format!("{}@{}", chart.name, chart.version)
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A fresh download (digest `got`) is accepted when it matches the pinned
/// digest, if any, and what the lock recorded, if anything.
pub fn check_download(
    chart: &Chart,
    recorded: Option<&LockEntry>,
    lock_path: &Path,
    got: &str,
) -> Result<(), ChartError> {
    if let Some(pinned) = chart.digest
        && pinned != got
    {
        return Err(ChartError::PinnedMismatch {
            chart: key(chart),
            expected: pinned.to_owned(),
            got: got.to_owned(),
        });
    }
    match recorded {
        Some(entry) if entry.sha256 != got => Err(ChartError::LockMismatch {
            chart: key(chart),
            lock: lock_path.to_path_buf(),
            expected: entry.sha256.clone(),
            got: got.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// A cached archive at `path` (digest `got`) is used only when it is what
/// the lock recorded (and what is pinned).
pub fn check_cached(
    chart: &Chart,
    recorded: &LockEntry,
    path: &Path,
    got: &str,
) -> Result<(), ChartError> {
    let expected = chart.digest.unwrap_or(&recorded.sha256);
    if got == expected && got == recorded.sha256 {
        return Ok(());
    }
    Err(ChartError::Tampered {
        chart: key(chart),
        path: path.to_path_buf(),
        expected: expected.to_owned(),
        got: got.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addons::ChartRepo;

    const CHART: Chart = Chart {
        repo: ChartRepo::Http("https://charts.example"),
        name: "demo",
        version: "1.0.0",
        digest: None,
    };

    fn entry(sha: &str) -> LockEntry {
        LockEntry {
            sha256: sha.to_owned(),
            source: "https://charts.example".to_owned(),
            pulled_at: "2026-01-01T00:00:00Z".to_owned(),
            mirrored: BTreeMap::new(),
        }
    }

    #[test]
    fn the_digest_is_sha256_hex() {
        assert_eq!(
            sha256(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_first_download_is_trusted_a_later_one_must_match() {
        let lock = Path::new("/h/charts/charts.lock.json");
        assert!(check_download(&CHART, None, lock, "sha256:aa").is_ok());
        let recorded = entry("sha256:aa");
        assert!(check_download(&CHART, Some(&recorded), lock, "sha256:aa").is_ok());
        let err = check_download(&CHART, Some(&recorded), lock, "sha256:bb")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("demo@1.0.0")
                && err.contains("sha256:aa")
                && err.contains("sha256:bb")
                && err.contains("charts.lock.json"),
            "{err}"
        );
    }

    #[test]
    fn a_pinned_digest_is_required() {
        let pinned = Chart {
            digest: Some("sha256:aa"),
            ..CHART
        };
        let lock = Path::new("/l");
        assert!(check_download(&pinned, None, lock, "sha256:aa").is_ok());
        let err = check_download(&pinned, None, lock, "sha256:bb").unwrap_err();
        assert!(matches!(err, ChartError::PinnedMismatch { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("demo@1.0.0") && text.contains("pinned") && text.contains("sha256:bb"),
            "{text}"
        );
    }

    #[test]
    fn a_changed_cached_file_is_refused_with_the_fix() {
        let path = Path::new("/h/charts/demo-1.0.0.tgz");
        assert!(check_cached(&CHART, &entry("sha256:aa"), path, "sha256:aa").is_ok());
        let err = check_cached(&CHART, &entry("sha256:aa"), path, "sha256:cc")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("demo-1.0.0.tgz")
                && err.contains("delete it and run `hostctl charts pull` again"),
            "{err}"
        );
        // A lock edited to match a changed file still fails a pinned digest.
        let pinned = Chart {
            digest: Some("sha256:aa"),
            ..CHART
        };
        assert!(check_cached(&pinned, &entry("sha256:cc"), path, "sha256:cc").is_err());
    }
}
