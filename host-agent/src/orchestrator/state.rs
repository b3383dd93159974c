//! What `up` has done, step by step, in `$HOSTCTL_HOME/up-state.json`.
//!
//! Rules: every transition is recorded (pending → running → done | failed);
//! the file is replaced atomically, so a crash leaves the previous or the
//! next version. A later run trusts a `done` or `running` record only after
//! the step's postcondition is checked again ([`super::StepJob::satisfied`]):
//! `running` at start means the last `up` died in that step. Records of
//! steps not in this run's graph (`up --only` another cluster) are kept.
//!
//! Writes go through one writer task that coalesces bursts (sixty nodes
//! finishing a step together cost one write, not sixty), so persistence
//! never sits on the graph's critical path; [`StateStore::flush`] makes the
//! last state durable before `up` exits.

use super::StepId;
use crate::state_file::StateDocument;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::Notify;

/// The file's name under `$HOSTCTL_HOME`.
pub const STATE_FILE: &str = "up-state.json";

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Running,
    Done,
    Failed,
}

/// One step's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time")]
    pub started_at: Option<SystemTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time")]
    pub finished_at: Option<SystemTime>,
    /// Why it failed, or why it did not run (a dependency failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StepRecord {
    fn pending() -> StepRecord {
        StepRecord {
            status: StepStatus::Pending,
            started_at: None,
            finished_at: None,
            error: None,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpState {
    pub steps: BTreeMap<StepId, StepRecord>,
}

/// The state file could not be read or written.
pub type StateError = crate::state_file::StateFileError;

impl StateDocument for UpState {
    const MODE: u32 = 0o600;
    const IF_DAMAGED: &'static str =
        "remove it to start over (machines are checked again, nothing is launched twice)";
}

impl UpState {
    pub fn status(&self, id: &StepId) -> Option<StepStatus> {
        self.steps.get(id).map(|r| r.status)
    }

    /// Whether the last run finished installing `addon` on `cluster`
    /// (what `status` and later runs look at before talking to it).
    pub fn addon_done(&self, cluster: &str, addon: &str) -> bool {
        self.step_done(&format!("addon/{cluster}/{addon}"))
    }

    /// Whether the last run finished the step called `id` (e.g.
    /// `kubeconfig/app1`).
    pub fn step_done(&self, id: &str) -> bool {
        self.steps
            .iter()
            .any(|(step, record)| step.as_str() == id && record.status == StepStatus::Done)
    }
}

/// The live state of a run, shared by the executor and the writer task.
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    state: Mutex<Snapshot>,
    dirty: Arc<Notify>,
    /// One writer at a time: `write_atomic`'s temporary file is per process.
    writing: Mutex<()>,
}

struct Snapshot {
    state: UpState,
    version: u64,
    written: u64,
    last_error: Option<String>,
}

impl StateStore {
    /// Loads the file at `path` (or starts empty) and starts the writer
    /// task on the current runtime.
    pub fn open(path: &Path) -> Result<StateStore, StateError> {
        let state = UpState::load(path)?;
        let store = StateStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                state: Mutex::new(Snapshot {
                    state,
                    version: 0,
                    written: 0,
                    last_error: None,
                }),
                dirty: Arc::new(Notify::new()),
                writing: Mutex::new(()),
            }),
        };
        let weak = Arc::downgrade(&store.inner);
        let dirty = store.inner.dirty.clone();
        tokio::spawn(async move {
            loop {
                dirty.notified().await;
                let Some(inner) = weak.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || write_pending(&inner)).await;
            }
        });
        Ok(store)
    }

    /// A copy of the state as it is now.
    pub fn snapshot(&self) -> UpState {
        self.lock().state.clone()
    }

    /// The record of `id` as a previous run left it (before this run
    /// touched it).
    pub fn record(&self, id: &StepId) -> Option<StepRecord> {
        self.lock().state.steps.get(id).cloned()
    }

    pub fn set(&self, id: &StepId, status: StepStatus, error: Option<String>) {
        let mut snap = self.lock();
        let now = SystemTime::now();
        let record = snap
            .state
            .steps
            .entry(id.clone())
            .or_insert_with(StepRecord::pending);
        match status {
            StepStatus::Pending => {
                record.started_at = None;
                record.finished_at = None;
            }
            StepStatus::Running => {
                record.started_at = Some(now);
                record.finished_at = None;
            }
            StepStatus::Done | StepStatus::Failed => record.finished_at = Some(now),
        }
        record.status = status;
        record.error = error;
        snap.version += 1;
        drop(snap);
        self.inner.dirty.notify_one();
    }

    /// Writes whatever is not on disk yet, now; reports the last write
    /// failure of the writer task if the final write also fails.
    pub fn flush(&self) -> Result<(), StateError> {
        let inner = &self.inner;
        let _writing = inner
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (state, version) = {
            let snap = lock(&inner.state);
            if snap.written == snap.version && snap.last_error.is_none() {
                return Ok(());
            }
            (snap.state.clone(), snap.version)
        };
        state.save(&inner.path)?;
        let mut snap = lock(&inner.state);
        snap.written = snap.written.max(version);
        snap.last_error = None;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        lock(&self.inner.state)
    }
}

/// A poisoned lock only means a step panicked while holding it; the state
/// itself is a plain value and still consistent.
fn lock(m: &Mutex<Snapshot>) -> MutexGuard<'_, Snapshot> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_pending(inner: &Inner) {
    let _writing = inner
        .writing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (state, version) = {
        let snap = lock(&inner.state);
        if snap.written == snap.version {
            return;
        }
        (snap.state.clone(), snap.version)
    };
    let result = state.save(&inner.path);
    let mut snap = lock(&inner.state);
    match result {
        Ok(()) => {
            snap.written = snap.written.max(version);
            snap.last_error = None;
        }
        Err(e) => {
            tracing::warn!("recording up state: {e}");
            snap.last_error = Some(e.to_string());
        }
    }
}

/// RFC 3339-free timestamps: seconds since the epoch as a float, readable
/// by `jq` and tests without a date library.
mod opt_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let secs: Option<f64> = Option::deserialize(d)?;
        Ok(secs
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| UNIX_EPOCH + Duration::from_secs_f64(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::StepKind;

    #[test]
    fn the_file_keeps_its_format_and_a_bad_step_name_is_damage_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let text = r#"{"steps":{"kubeadm-init/app1":{"status":"done"},"launch/app1-cp":{"status":"failed","error":"launch/app1-cp: no space left"}}}"#;
        std::fs::write(&path, text).unwrap();
        let state = UpState::load(&path).unwrap();
        assert_eq!(
            state.status(&StepId::new(StepKind::KubeadmInit, "app1")),
            Some(StepStatus::Done)
        );
        assert_eq!(serde_json::to_string(&state).unwrap(), text);

        std::fs::write(&path, r#"{"steps":{"lunch/app1-cp":{"status":"done"}}}"#).unwrap();
        let err = UpState::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("up-state.json is damaged (unknown step kind \"lunch\""),
            "{err}"
        );
        assert!(err.ends_with(UpState::IF_DAMAGED), "{err}");
    }
}
