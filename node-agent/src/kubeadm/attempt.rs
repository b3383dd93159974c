//! The kubeadm commands this agent started and has not seen succeed.
//!
//! `kubeadm init` that fails after its kubeconfig phase leaves `admin.conf`
//! behind, and once the API server runs the node looks exactly like a
//! finished control plane, although the phases after the failure
//! (upload-config, bootstrap-token, addons, …) never ran: answering
//! "already done" there would hand the host a cluster nobody can join. So
//! the agent records an attempt before it runs a command and clears it only
//! when the command succeeded; an init or join that finds its own
//! unfinished attempt together with kubeadm's files resets the node first.
//! Nodes set up by hand, or before the agent kept this record, have no
//! attempt and keep the old answer. The record lives in the agent's state
//! directory, which `kubeadm reset` does not touch.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::KubeadmError;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Attempts {
    dir: PathBuf,
}

impl Attempts {
    /// Attempts recorded under `state_dir` (the agent's `stateDir`).
    pub fn new(state_dir: &Path) -> Attempts {
        Attempts {
            dir: state_dir.join("kubeadm"),
        }
    }

    fn path(&self, command: &str) -> PathBuf {
        self.dir.join(format!("{command}.attempt"))
    }

    /// Records that `command` is about to run (durably: the record must
    /// survive a crash of the agent or the machine during the command).
    pub fn begin(&self, command: &str) -> Result<(), KubeadmError> {
        let path = self.path(command);
        std::fs::create_dir_all(&self.dir).map_err(KubeadmError::io("creating", &self.dir))?;
        let since = unix_seconds(SystemTime::now());
        crate::state::write_atomic(&path, format!("started {since}\n").as_bytes(), 0o600)?;
        Ok(())
    }

    /// `command` succeeded (or the node was reset): nothing is pending.
    pub fn clear(&self, command: &str) -> Result<(), KubeadmError> {
        let path = self.path(command);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(KubeadmError::io("removing", &path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Did this agent start `command` without seeing it succeed?
    pub fn unfinished(&self, command: &str) -> bool {
        self.path(command).is_file()
    }
}

/// Seconds since the Unix epoch (the record is for people reading the
/// state directory; nothing parses it).
fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_is_unfinished_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let attempts = Attempts::new(dir.path());
        assert!(!attempts.unfinished("init"));
        attempts.begin("init").unwrap();
        assert!(attempts.unfinished("init"));
        assert!(!attempts.unfinished("join"));
        // A second instance (the agent restarted) sees the same record.
        assert!(Attempts::new(dir.path()).unfinished("init"));
        attempts.clear("init").unwrap();
        attempts.clear("init").unwrap();
        assert!(!attempts.unfinished("init"));
    }
}
