//! The optional `backups:` section. `managed: true` asks hostctl to run
//! the object store on the host (`hostctl storage`, Garage) as part of
//! `up`, and to install Velero on every cluster with a backup location
//! there (docs/backup.md). Off by default: it needs the `garage` binary
//! on the host and memory on each cluster for Velero.

use serde::Serialize;

/// What `backups:` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backups {
    /// hostctl runs the store and Velero.
    pub managed: bool,
}
