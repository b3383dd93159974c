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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::PkiError;
use crate::params::BACKDATE;
use crate::store::{self, KEY_MODE};

const VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct FloorFile {
    version: u32,
    /// Node name → floor, Unix seconds.
    floors: BTreeMap<String, u64>,
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

/// The per-node floors, loaded once and written through.
#[derive(Debug)]
pub struct CertFloors {
    path: PathBuf,
    floors: Mutex<BTreeMap<String, u64>>,
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
            let file: FloorFile =
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
            floors: Mutex::new(floors),
        })
    }

    /// Where the floors are stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The floor of `node`, if it has one.
    pub fn floor(&self, node: &str) -> Option<SystemTime> {
        let floors = self.floors.lock().ok()?;
        floors
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
    /// revoked, otherwise raises the floor to it (persisted), so every
    /// older certificate of the node is refused from now on.
    pub fn observe(&self, node: &str, not_before: SystemTime) -> Result<ObserveOutcome, PkiError> {
        if let Err(revoked) = self.check(node, not_before) {
            return Ok(ObserveOutcome::Revoked(revoked));
        }
        let raised = self.raise(node, unix(not_before))?;
        Ok(if raised {
            ObserveOutcome::Raised
        } else {
            ObserveOutcome::Accepted
        })
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
    /// before the new floor takes effect in memory only when it is higher.
    fn raise(&self, node: &str, to: u64) -> Result<bool, PkiError> {
        let mut floors = self.floors.lock().unwrap_or_else(|p| p.into_inner());
        if floors.get(node).is_some_and(|f| *f >= to) {
            return Ok(false);
        }
        let mut next = floors.clone();
        next.insert(node.to_owned(), to);
        let file = FloorFile {
            version: VERSION,
            floors: next,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| PkiError::Damaged {
            path: self.path.clone(),
            what: format!("cannot encode the certificate floors: {e}"),
            fix: "report this as a bug".into(),
        })?;
        if let Some(dir) = self.path.parent() {
            store::ensure_private_dir(dir)?;
        }
        store::write_atomic(&self.path, &bytes, KEY_MODE)?;
        *floors = file.floors;
        Ok(true)
    }
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
        assert_eq!(
            f.observe("n1", at(1_000)).ok(),
            Some(ObserveOutcome::Raised)
        );
        assert_eq!(
            f.observe("n1", at(1_000)).ok(),
            Some(ObserveOutcome::Accepted)
        );
        assert!(matches!(
            f.observe("n1", at(999)),
            Ok(ObserveOutcome::Revoked(_))
        ));
        assert!(f.check("n2", at(1)).is_ok(), "floors are per node");
    }

    #[test]
    fn a_renewed_certificate_in_use_retires_the_old_one() {
        let (_d, f) = floors();
        f.enrolled("n1", at(1_000)).expect("enrol");
        // Renewed: the old one stays good until the new one is used.
        assert!(f.check("n1", at(1_000)).is_ok());
        assert_eq!(
            f.observe("n1", at(5_000)).ok(),
            Some(ObserveOutcome::Raised)
        );
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
    fn a_floor_never_moves_down() {
        let (_d, f) = floors();
        f.enrolled("n1", at(5_000)).expect("enrol");
        f.enrolled("n1", at(1_000)).expect("older enrol");
        assert_eq!(f.floor("n1"), Some(at(5_000)));
    }
}
