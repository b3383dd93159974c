//! Node certificate revocation by a per-node "not before" floor.
//!
//! The host refuses any node certificate whose notBefore is earlier than
//! that node's floor. One number per node is enough because the host issues
//! every node certificate itself and their notBefore only moves forward:
//! - **re-enrolment** (a new token) sets the floor to the new certificate's
//!   notBefore, so every earlier certificate of the node dies at once;
//! - **use** of a newer certificate (after a renewal) raises the floor to it
//!   ([`CertFloors::observe`]), so the certificate it replaced stops working
//!   as soon as the node has switched — and not before, so an agent that
//!   crashed between receiving and storing its renewed certificate can still
//!   use its old one;
//! - **revocation** (`hostctl certs revoke NODE`) puts the floor one second
//!   after the notBefore the host would give a certificate issued now, so
//!   every certificate issued so far is refused.
//!
//! Every certificate the host issues to a node is dated at least one second
//! after the node's floor ([`CertFloors::not_before_for_new`]): so a
//! re-enrolment right after a revocation is accepted, and a renewed or
//! re-enrolled certificate is always strictly newer than the one it
//! replaces, even within the same second (notBefore has whole seconds).
//! This can date a certificate up to a second per issuance ahead of the
//! usual five minutes back; renewals are rate-limited and enrolments need
//! a token each, so it never approaches the present.
//!
//! Why not a CRL or a serial list: nothing outside the host verifies node
//! certificates against the agent CA, so a CRL would have no reader, and a
//! floor needs no list that grows with every renewal. Why not serials: they
//! are random (RFC 5280 uniqueness), so they order nothing.
//!
//! Stored at `pki/agent/cert-floors.json` (0600), written atomically, kept
//! in memory by its one writer, the daemon (the CLI revokes through it).
//!
//! **When the file is written.** Enrolment and revocation write it before
//! the new floor takes effect. A raise by use takes effect in memory at
//! once and is written by the next [`CertFloors::flush`], which writes
//! every raise since the previous write in one go. The file holds every
//! node's floor, so writing it on each use made the first connection of N
//! nodes (a fleet after an upgrade to floors, a fleet renewing together, a
//! benchmark's agents) write N files of N entries one after another, and,
//! with the lock held across the write, every report's check waited too:
//! at 5,000 nodes, seconds of stalled reports (issue 23's fan-in). A raise
//! by use only retires older certificates, and failing to write it already
//! had to admit its caller; so admitting before the write gives up nothing
//! the caller had. A crash before the flush loses the raise, and the
//! node's next call with its newest certificate makes it again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::PkiError;
use crate::params::BACKDATE;
use crate::store::{self, KEY_MODE};

const VERSION: u32 = 1;

/// The file: `M` is the map when read, a borrow of it when written.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FloorFile<M> {
    version: u32,
    /// Node name → floor, Unix seconds.
    floors: M,
}

/// A certificate the floor refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the certificate of node {node:?} was revoked (issued before {floor}, the node's floor); \
     the node must enrol again with a new token"
)]
pub struct Revoked {
    /// The node whose certificate was presented (its CN).
    pub node: String,
    /// RFC 3339, UTC.
    pub floor: String,
}

/// The per-node floors, loaded once and written through (raises by use
/// on [`CertFloors::flush`], see the module documentation).
#[derive(Debug)]
pub struct CertFloors {
    path: PathBuf,
    /// Held only to look up, change or encode, never during I/O.
    state: Mutex<State>,
    /// Held while the file is written: one write at a time.
    writing: Mutex<()>,
}

#[derive(Debug)]
struct State {
    /// The floors in effect.
    floors: BTreeMap<String, u64>,
    /// Raises by use so far.
    used: u64,
    /// How many of them the file holds.
    written: u64,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rfc3339(secs: u64) -> String {
    crate::inspect::rfc3339(i64::try_from(secs).unwrap_or(i64::MAX))
}

impl CertFloors {
    /// Loads `path`, or starts empty when it does not exist yet (every
    /// certificate accepted until the first enrolment, use or revocation).
    pub fn open(path: impl Into<PathBuf>) -> Result<CertFloors, PkiError> {
        let path = path.into();
        let floors = if store::exists(&path)? {
            let bytes = store::read_secret(&path)?;
            let file: FloorFile<BTreeMap<String, u64>> =
                serde_json::from_slice(&bytes).map_err(|e| PkiError::Damaged {
                    path: path.clone(),
                    what: format!("not a certificate floor file: {e}"),
                    fix: "restore it from a backup; removing it un-revokes every node certificate"
                        .into(),
                })?;
            file.floors
        } else {
            BTreeMap::new()
        };
        Ok(CertFloors {
            path,
            state: Mutex::new(State {
                floors,
                used: 0,
                written: 0,
            }),
            writing: Mutex::default(),
        })
    }

    /// Where the floors are stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The floor of `node`, if it has one.
    pub fn floor(&self, node: &str) -> Option<SystemTime> {
        lock(&self.state)
            .floors
            .get(node)
            .map(|s| UNIX_EPOCH + Duration::from_secs(*s))
    }

    /// Refuses a certificate of `node` dated before its floor.
    pub fn check(&self, node: &str, not_before: SystemTime) -> Result<(), Revoked> {
        match self.floor(node) {
            Some(floor) if unix(not_before) < unix(floor) => Err(Revoked {
                node: node.to_owned(),
                floor: rfc3339(unix(floor)),
            }),
            _ => Ok(()),
        }
    }

    /// A certificate of `node` dated `not_before` was used: refuses it if
    /// revoked, otherwise raises the floor to it, so every older
    /// certificate of the node is refused from now on. The raise takes
    /// effect at once and is written by the next [`CertFloors::flush`]
    /// (see the module documentation); nothing here waits for I/O.
    pub fn observe(&self, node: &str, not_before: SystemTime) -> ObserveOutcome {
        let secs = unix(not_before);
        let mut state = lock(&self.state);
        match state.floors.get(node).copied() {
            Some(floor) if secs < floor => ObserveOutcome::Revoked(Revoked {
                node: node.to_owned(),
                floor: rfc3339(floor),
            }),
            Some(floor) if secs == floor => ObserveOutcome::Accepted,
            _ => {
                state.floors.insert(node.to_owned(), secs);
                state.used += 1;
                ObserveOutcome::Raised
            }
        }
    }

    /// Writes the raises by use not written yet, all in one write; returns
    /// whether there were any. After a failed write they stay in effect
    /// and the next flush writes them.
    pub fn flush(&self) -> Result<bool, PkiError> {
        let _writing = lock(&self.writing);
        let (bytes, used) = {
            let state = lock(&self.state);
            if state.written == state.used {
                return Ok(false);
            }
            (self.encode(&state.floors)?, state.used)
        };
        self.write(&bytes)?;
        let mut state = lock(&self.state);
        state.written = state.written.max(used);
        Ok(true)
    }

    /// A certificate dated `not_before` was just issued to `node` with a new
    /// enrolment token: every earlier one is revoked.
    pub fn enrolled(&self, node: &str, not_before: SystemTime) -> Result<(), PkiError> {
        self.raise(node, unix(not_before)).map(|_| ())
    }

    /// Revokes every certificate `node` holds at `now`; returns the floor.
    pub fn revoke_all(&self, node: &str, now: SystemTime) -> Result<SystemTime, PkiError> {
        let floor = unix(now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH)) + 1;
        self.raise(node, floor)?;
        Ok(UNIX_EPOCH + Duration::from_secs(floor))
    }

    /// The earliest notBefore a certificate issued to `node` now may have:
    /// one second after its floor (see the module documentation).
    pub fn not_before_for_new(&self, node: &str) -> Option<SystemTime> {
        self.floor(node).map(|f| f + Duration::from_secs(1))
    }

    /// Raises `node`'s floor to `to` if that is higher; writes the file
    /// (with every raise by use so far) before the new floor takes effect
    /// in memory, and only when it is higher.
    fn raise(&self, node: &str, to: u64) -> Result<bool, PkiError> {
        let _writing = lock(&self.writing);
        let (bytes, used) = {
            let state = lock(&self.state);
            if state.floors.get(node).is_some_and(|f| *f >= to) {
                return Ok(false);
            }
            let mut next = state.floors.clone();
            next.insert(node.to_owned(), to);
            (self.encode(&next)?, state.used)
        };
        self.write(&bytes)?;
        let mut state = lock(&self.state);
        let floor = state.floors.entry(node.to_owned()).or_default();
        *floor = (*floor).max(to);
        state.written = state.written.max(used);
        Ok(true)
    }

    fn encode(&self, floors: &BTreeMap<String, u64>) -> Result<Vec<u8>, PkiError> {
        let file = FloorFile {
            version: VERSION,
            floors,
        };
        serde_json::to_vec_pretty(&file).map_err(|e| PkiError::Damaged {
            path: self.path.clone(),
            what: format!("cannot encode the certificate floors: {e}"),
            fix: "report this as a bug".into(),
        })
    }

    fn write(&self, bytes: &[u8]) -> Result<(), PkiError> {
        if let Some(dir) = self.path.parent() {
            store::ensure_private_dir(dir)?;
        }
        store::write_atomic(&self.path, bytes, KEY_MODE)
    }
}

/// A poisoned lock still holds a consistent state: every change is one
/// insert and counter update under it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What [`CertFloors::observe`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObserveOutcome {
    /// Not newer than the floor, not older: nothing changed.
    Accepted,
    /// Newer than the floor: the floor moved up to it.
    Raised,
    /// Older than the floor: refuse the caller.
    Revoked(Revoked),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn floors() -> (tempfile::TempDir, CertFloors) {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = CertFloors::open(dir.path().join("agent").join("cert-floors.json")).expect("open");
        (dir, f)
    }

    #[test]
    fn no_floor_accepts_everything_and_first_use_sets_it() {
        let (_d, f) = floors();
        assert_eq!(f.observe("n1", at(1_000)), ObserveOutcome::Raised);
        assert_eq!(f.observe("n1", at(1_000)), ObserveOutcome::Accepted);
        assert!(matches!(
            f.observe("n1", at(999)),
            ObserveOutcome::Revoked(_)
        ));
        assert!(f.check("n2", at(1)).is_ok(), "floors are per node");
    }

    #[test]
    fn a_renewed_certificate_in_use_retires_the_old_one() {
        let (_d, f) = floors();
        f.enrolled("n1", at(1_000)).expect("enrol");
        // Renewed: the old one stays good until the new one is used.
        assert!(f.check("n1", at(1_000)).is_ok());
        assert_eq!(f.observe("n1", at(5_000)), ObserveOutcome::Raised);
        assert!(f.check("n1", at(1_000)).is_err());
    }

    #[test]
    fn revocation_refuses_everything_issued_so_far_but_not_the_next() {
        let (_d, f) = floors();
        let now = at(100_000);
        let issued_now = now - BACKDATE;
        f.enrolled("n1", issued_now).expect("enrol");
        let floor = f.revoke_all("n1", now).expect("revoke");
        assert!(f.check("n1", issued_now).is_err());
        let next = f.not_before_for_new("n1").expect("floor");
        assert_eq!(next, floor + Duration::from_secs(1));
        assert!(f.check("n1", next).is_ok());
        assert!(next <= now, "a certificate dated at the floor is valid now");
    }

    #[test]
    fn floors_survive_a_reopen_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_d, f) = floors();
        f.revoke_all("n1", at(10_000)).expect("revoke");
        let again = CertFloors::open(f.path()).expect("reopen");
        assert_eq!(again.floor("n1"), f.floor("n1"));
        let mode = std::fs::metadata(f.path())
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let (_d, f) = floors();
        f.enrolled("n1", at(1)).expect("enrol");
        std::fs::write(f.path(), b"{not json").expect("write");
        let err = CertFloors::open(f.path()).expect_err("damaged");
        let msg = err.to_string();
        assert!(msg.contains("cert-floors.json"), "{msg}");
    }

    #[test]
    fn raises_by_use_are_written_together_by_the_next_flush() {
        let (_d, f) = floors();
        f.enrolled("n0", at(500)).expect("enrol");
        for i in 1..=3u64 {
            assert_eq!(
                f.observe(&format!("n{i}"), at(1_000 + i)),
                ObserveOutcome::Raised
            );
        }
        assert_eq!(f.observe("n0", at(900)), ObserveOutcome::Raised);
        // In effect at once, on disk only after the flush.
        assert!(f.check("n0", at(500)).is_err());
        let before = CertFloors::open(f.path()).expect("reopen");
        assert_eq!(before.floor("n0"), Some(at(500)));
        assert_eq!(before.floor("n1"), None);
        assert!(f.flush().expect("flush"), "there was something to write");
        assert!(!f.flush().expect("flush"), "nothing left to write");
        let after = CertFloors::open(f.path()).expect("reopen");
        assert_eq!(after.floor("n0"), Some(at(900)));
        for i in 1..=3u64 {
            assert_eq!(after.floor(&format!("n{i}")), Some(at(1_000 + i)));
        }
    }

    #[test]
    fn a_revocation_writes_the_raises_by_use_with_it() {
        let (_d, f) = floors();
        assert_eq!(f.observe("n1", at(1_000)), ObserveOutcome::Raised);
        f.revoke_all("n2", at(100_000)).expect("revoke");
        assert!(!f.flush().expect("flush"), "the revocation wrote n1 too");
        let again = CertFloors::open(f.path()).expect("reopen");
        assert_eq!(again.floor("n1"), Some(at(1_000)));
        assert!(again.floor("n2").is_some());
    }

    #[test]
    fn a_floor_never_moves_down() {
        let (_d, f) = floors();
        f.enrolled("n1", at(5_000)).expect("enrol");
        f.enrolled("n1", at(1_000)).expect("older enrol");
        assert_eq!(f.floor("n1"), Some(at(5_000)));
    }
}
