//! `<stateDir>/prereq-state.json`: which steps completed, and with which
//! inputs. A rerun skips a step only when its record matches today's inputs
//! *and* its check still passes, so changing the proxy or the version redoes
//! exactly the steps that depend on it, and a file someone deleted is put
//! back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::PrereqError;

/// The file name inside the state directory.
pub const FILE: &str = "prereq-state.json";

/// The inputs a step's result depends on (e.g. `aptProxy` → URL).
pub type StepInputs = BTreeMap<String, String>;

/// One completed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub inputs: StepInputs,
    /// Seconds since the Unix epoch.
    pub completed_at: u64,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub steps: BTreeMap<String, StepRecord>,
    #[serde(skip)]
    path: PathBuf,
}

impl Record {
    /// Reads the record in `state_dir`. A missing file is an empty record;
    /// so is an unreadable one (logged): the worst outcome is redoing
    /// idempotent steps.
    pub fn load(state_dir: &Path) -> Result<Record, PrereqError> {
        let path = state_dir.join(FILE);
        let mut record = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), "ignoring an unreadable prerequisites record: {e}");
                Record::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Record::default(),
            Err(e) => return Err(PrereqError::io("reading", &path)(e)),
        };
        record.path = path;
        Ok(record)
    }

    /// True when `step` completed with exactly `inputs`.
    pub fn is_done(&self, step: &str, inputs: &StepInputs) -> bool {
        self.steps.get(step).is_some_and(|r| &r.inputs == inputs)
    }

    /// Records `step` as completed with `inputs` and saves the file.
    pub fn mark_done(&mut self, step: &str, inputs: StepInputs) -> Result<(), PrereqError> {
        let completed_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.steps.insert(
            step.to_owned(),
            StepRecord {
                inputs,
                completed_at,
            },
        );
        self.save()
    }

    /// Forgets `step` (it is being redone or failed) and saves the file.
    pub fn forget(&mut self, step: &str) -> Result<(), PrereqError> {
        if self.steps.remove(step).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), PrereqError> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| PrereqError::io("encoding", &self.path)(std::io::Error::other(e)))?;
        crate::state::write_atomic(&self.path, &json, 0o600)?;
        Ok(())
    }
}
