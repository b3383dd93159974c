//! What hostctl installed where: `$HOSTCTL_HOME/addons.json`, one entry
//! per (cluster, add-on) written when its install step finishes. A rerun
//! of `up` skips an add-on whose entry matches what would be installed now
//! (same chart version, same rendering) and whose readiness still holds;
//! `addons status` shows the entries next to the live readiness.

use super::render::Rendered;
use crate::state_file::StateDocument;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The record's file name under `$HOSTCTL_HOME`.
pub const FILE: &str = "addons.json";

/// One installed add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// The chart version installed (`None`: objects only).
    pub version: Option<String>,
    /// sha256 of the review rendering (values and objects with
    /// placeholder credentials): changes exactly when what hostctl would
    /// install changes, and never with freshly minted keys.
    pub fingerprint: String,
    /// RFC 3339, when the install step finished.
    pub installed_at: String,
}

/// Every cluster's installed add-ons.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonRecord {
    /// cluster → add-on → what was installed.
    pub clusters: BTreeMap<String, BTreeMap<String, Installed>>,
}

impl StateDocument for AddonRecord {
    const MODE: u32 = 0o600;
    const IF_DAMAGED: &'static str =
        "remove it; the next `up` reinstalls every add-on (helm upgrade and apply are idempotent)";
}

impl AddonRecord {
    pub fn path(home: &Path) -> PathBuf {
        home.join(FILE)
    }

    pub fn get(&self, cluster: &str, addon: &str) -> Option<&Installed> {
        self.clusters.get(cluster).and_then(|m| m.get(addon))
    }
}

/// The fingerprint of a review rendering (see [`Installed::fingerprint`]).
pub fn fingerprint(review: &Rendered) -> String {
    let mut hash = Sha256::new();
    hash.update(review.addon.chart.map(|c| c.version).unwrap_or_default());
    for (path, text) in review.files() {
        hash.update(path.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
