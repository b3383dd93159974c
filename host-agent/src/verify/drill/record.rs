//! What a drill leaves under `$HOSTCTL_HOME/drills/`: `<drill>.json`, its
//! last result (shown by `status` as when each contract was last proven),
//! and `<drill>.running.json` while it has something stopped, so a drill
//! that was interrupted or failed midway is restored by the next run of the
//! same drill before anything else happens. Both files are 0600 in a 0700
//! directory: a drill's evidence names machines and addresses.

use super::{DrillError, DrillName, DrillReport};
use crate::fsutil::{read_json_or_default, write_json_atomic};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a running drill has taken away, to put back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// Machines the drill stopped.
    #[serde(default)]
    pub stopped_machines: Vec<String>,
    /// The drill sealed Vault.
    #[serde(default)]
    pub sealed_vault: bool,
    /// The drill stopped Harbor.
    #[serde(default)]
    pub stopped_harbor: bool,
}

impl Running {
    pub fn is_empty(&self) -> bool {
        self.stopped_machines.is_empty() && !self.sealed_vault && !self.stopped_harbor
    }
}

/// The drills directory of a home.
#[derive(Debug, Clone)]
pub struct DrillStore {
    dir: PathBuf,
}

impl DrillStore {
    pub fn new(home: &Path) -> DrillStore {
        DrillStore {
            dir: home.join("drills"),
        }
    }

    fn result_path(&self, drill: DrillName) -> PathBuf {
        self.dir.join(format!("{}.json", drill.as_str()))
    }

    fn running_path(&self, drill: DrillName) -> PathBuf {
        self.dir.join(format!("{}.running.json", drill.as_str()))
    }

    fn ensure_dir(&self) -> Result<(), DrillError> {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(DrillError::Io {
                path: self.dir.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Records a finished drill (replacing the previous result).
    pub fn save(&self, report: &DrillReport) -> Result<(), DrillError> {
        self.ensure_dir()?;
        Ok(write_json_atomic(
            &self.result_path(report.drill),
            report,
            0o600,
        )?)
    }

    /// The last result of `drill`, if it ever ran.
    pub fn last(&self, drill: DrillName) -> Result<Option<DrillReport>, DrillError> {
        let path = self.result_path(drill);
        if !path.exists() {
            return Ok(None);
        }
        Ok(read_json_or_default::<Option<DrillReport>>(&path)?)
    }

    /// What an unfinished run of `drill` left stopped (empty when none).
    pub fn running(&self, drill: DrillName) -> Result<Running, DrillError> {
        Ok(read_json_or_default(&self.running_path(drill))?)
    }

    /// Notes what the drill is about to stop, before it stops it.
    pub fn mark_running(&self, drill: DrillName, running: &Running) -> Result<(), DrillError> {
        self.ensure_dir()?;
        Ok(write_json_atomic(
            &self.running_path(drill),
            running,
            0o600,
        )?)
    }

    /// Everything is back: forget the marker.
    pub fn clear_running(&self, drill: DrillName) -> Result<(), DrillError> {
        match std::fs::remove_file(self.running_path(drill)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DrillError::Io {
                path: self.running_path(drill),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}
