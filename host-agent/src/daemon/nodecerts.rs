//! Which node certificates the daemon still accepts, and what `status`
//! shows of them (issue 13, item 9).
//!
//! The TLS handshake proves a certificate chains to the agent CA and is
//! within its validity; this module adds the host's own revocation on top
//! of it: every call by a node is checked against the node's "not before"
//! floor ([`certs::CertFloors`], the reasoning is there), and a newer
//! certificate in use raises the floor, retiring the one it replaced.
//! A report stream is long-lived, so the reports reader asks
//! [`NodeCerts::still_accepted`] again for every report: a revocation ends
//! streams that are already open at their next report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use certs::{CertFloors, ObserveOutcome, PkiError, ROLE_NODE};
use tonic::{Request, Status};

use super::authz::{self, Caller};

/// `status` warns when a node's agent certificate expires sooner than this
/// (agents renew at two thirds of the lifetime, so an unwarned one is
/// renewing itself; a warned one is not).
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// The certificate a node last authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InUse {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// The revocation floors and the certificates nodes use.
#[derive(Debug)]
pub struct NodeCerts {
    floors: Arc<CertFloors>,
    in_use: Mutex<HashMap<String, InUse>>,
    /// A flush of the floors is queued and has not started yet.
    flush_queued: Arc<AtomicBool>,
}

fn is_node(caller: &Caller) -> bool {
    caller.roles.iter().any(|r| r == ROLE_NODE)
}

fn revoked_status(revoked: &certs::Revoked) -> Status {
    Status::unauthenticated(revoked.to_string())
}

impl NodeCerts {
    pub fn new(floors: CertFloors) -> NodeCerts {
        NodeCerts {
            floors: Arc::new(floors),
            in_use: Mutex::new(HashMap::new()),
            flush_queued: Arc::default(),
        }
    }

    /// Admits a call by `caller`: a node certificate below its node's floor
    /// is refused (`UNAUTHENTICATED`, saying it was revoked); a newer one
    /// raises the floor, at once, and the raise is written in the
    /// background ([`NodeCerts::flush_soon`]). Admin and host certificates
    /// are not node certificates and pass unchanged. Decided in memory:
    /// every call and every report of a node passes here.
    pub fn admit(&self, caller: &Caller) -> Result<(), Status> {
        if !is_node(caller) {
            return Ok(());
        }
        match self.floors.observe(&caller.name, caller.not_before) {
            ObserveOutcome::Revoked(revoked) => {
                tracing::warn!(node = caller.name, "refused a revoked node certificate");
                return Err(revoked_status(&revoked));
            }
            ObserveOutcome::Raised => {
                tracing::info!(
                    node = caller.name,
                    "node uses a newer certificate; its earlier ones are no longer accepted"
                );
                self.flush_soon();
            }
            ObserveOutcome::Accepted => {}
        }
        if let Ok(mut m) = self.in_use.lock() {
            m.insert(
                caller.name.clone(),
                InUse {
                    not_before: caller.not_before,
                    not_after: caller.not_after,
                },
            );
        }
        Ok(())
    }

    /// Writes the floors raised by use, on the blocking pool when called on
    /// a runtime (the write `fsync`s). At most one flush waits to start:
    /// raises made meanwhile go out with it, so N nodes connecting at once
    /// cost a few writes, not N (see [`certs::CertFloors`]). A failed write
    /// is logged; the raises stay in effect and go out with the next one.
    fn flush_soon(&self) {
        if self.flush_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let (floors, queued) = (self.floors.clone(), self.flush_queued.clone());
        let flush = move || {
            // Cleared before the write starts, so a raise from now on
            // queues the next flush instead of being missed by this one.
            queued.swap(false, Ordering::AcqRel);
            if let Err(e) = floors.flush() {
                tracing::warn!(error = %e, "cannot record the nodes' certificate floors");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(flush)),
            Err(_) => flush(),
        }
    }

    /// Writes what [`NodeCerts::flush_soon`] has not written yet; the
    /// daemon's stop calls it.
    pub fn flush(&self) -> Result<(), PkiError> {
        self.floors.flush().map(|_| ())
    }

    /// Whether `caller`'s certificate is still accepted (revocation since
    /// its call began ends it).
    pub fn still_accepted(&self, caller: &Caller) -> Result<(), Status> {
        if !is_node(caller) {
            return Ok(());
        }
        self.floors
            .check(&caller.name, caller.not_before)
            .map_err(|r| revoked_status(&r))
    }

    /// Revokes every certificate `node` holds at `now`; returns the floor.
    pub fn revoke(&self, node: &str, now: SystemTime) -> Result<SystemTime, PkiError> {
        let floor = self.floors.revoke_all(node, now)?;
        tracing::warn!(node, "every certificate of the node was revoked");
        Ok(floor)
    }

    /// A new enrolment of `node` is about to be signed at `now`: raises the
    /// floor to the notBefore the new certificate will get (at least; one
    /// second after the old floor, see [`certs::CertFloors`]), so the
    /// node's earlier certificates are refused from here on. Returns that
    /// notBefore, to sign with.
    pub fn enrolling(&self, node: &str, now: SystemTime) -> Result<SystemTime, PkiError> {
        let dated = now
            .checked_sub(certs::NODE_CERT_BACKDATE)
            .unwrap_or(now)
            .max(
                self.floors
                    .not_before_for_new(node)
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            );
        self.floors.enrolled(node, dated)?;
        Ok(dated)
    }

    /// The earliest notBefore a renewed certificate of `node` may have (one
    /// second after its floor, so it is strictly newer than the one in use).
    pub fn not_before_for_new(&self, node: &str) -> Option<SystemTime> {
        self.floors.not_before_for_new(node)
    }

    /// The certificate `node` last authenticated with since the daemon
    /// started, if any.
    pub fn in_use(&self, node: &str) -> Option<InUse> {
        self.in_use.lock().ok()?.get(node).copied()
    }

    /// What `status` warns about the certificate `node` uses, at `now`.
    pub fn warning(&self, node: &str, now: SystemTime) -> Option<String> {
        let cert = self.in_use(node)?;
        if self.floors.check(node, cert.not_before).is_err() {
            return Some(
                "agent certificate revoked: the node must enrol again with a new token \
                 (remove and recreate its machine with `hostctl up`)"
                    .into(),
            );
        }
        let left = cert.not_after.duration_since(now).unwrap_or_default();
        if left < EXPIRY_WARNING {
            let days = left.as_secs() / 86_400;
            return Some(format!(
                "agent certificate expires in {days} days and has not renewed itself; \
                 run `hostctl certs renew {node}`"
            ));
        }
        None
    }
}

/// [`authz::authorize`] plus revocation: the caller of `req`, if allowed
/// to call `method` with a certificate the host still accepts.
pub fn authorize<T>(certs: &NodeCerts, req: &Request<T>, method: &str) -> Result<Caller, Status> {
    let caller = authz::authorize(req, method)?;
    certs.admit(&caller)?;
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn node_certs() -> (tempfile::TempDir, NodeCerts) {
        let dir = tempfile::tempdir().expect("tempdir");
        let floors =
            CertFloors::open(dir.path().join("agent").join("cert-floors.json")).expect("floors");
        (dir, NodeCerts::new(floors))
    }

    fn caller(roles: &[&str], not_before: u64, not_after: u64) -> Caller {
        Caller {
            name: "app1-cp".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            not_before: UNIX_EPOCH + Duration::from_secs(not_before),
            not_after: UNIX_EPOCH + Duration::from_secs(not_after),
        }
    }

    #[test]
    fn a_newer_certificate_in_use_retires_the_older_one() {
        let (_d, c) = node_certs();
        assert!(c.admit(&caller(&[ROLE_NODE], 1_000, 9_000)).is_ok());
        assert!(c.admit(&caller(&[ROLE_NODE], 2_000, 10_000)).is_ok());
        let old = c.admit(&caller(&[ROLE_NODE], 1_000, 9_000));
        let status = old.expect_err("the older certificate is retired");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(status.message().contains("revoked"), "{}", status.message());
    }

    #[test]
    fn a_raise_by_use_reaches_the_file() {
        let (_d, c) = node_certs();
        assert!(c.admit(&caller(&[ROLE_NODE], 1_000, 9_000)).is_ok());
        // Off a runtime the write is done in the call.
        let on_disk = CertFloors::open(c.floors.path()).expect("reopen");
        assert!(
            on_disk
                .check("app1-cp", UNIX_EPOCH + Duration::from_secs(999))
                .is_err()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raises_by_use_on_the_runtime_are_written_in_the_background() {
        let (_d, c) = node_certs();
        for i in 0..64u64 {
            let mut node = caller(&[ROLE_NODE], 1_000 + i, 9_000);
            node.name = format!("n{i}");
            assert!(c.admit(&node).is_ok());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let on_disk = CertFloors::open(c.floors.path()).expect("reopen");
            if (0..64u64).all(|i| on_disk.floor(&format!("n{i}")).is_some()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the raises never reached the file"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn revocation_refuses_open_streams_and_admin_certificates_are_exempt() {
        let (_d, c) = node_certs();
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let node = caller(&[ROLE_NODE], 1_000_000 - 300, 2_000_000);
        assert!(c.admit(&node).is_ok());
        c.revoke("app1-cp", now).expect("revoke");
        assert!(c.still_accepted(&node).is_err());
        assert!(c.admit(&node).is_err());
        let admin = caller(&[certs::ROLE_ADMIN], 0, 2_000_000);
        assert!(c.admit(&admin).is_ok(), "floors apply to node certificates");
        let w = c.warning("app1-cp", now).expect("revoked is a warning");
        assert!(w.contains("revoked"), "{w}");
    }

    #[test]
    fn an_expiry_within_thirty_days_is_a_warning() {
        let (_d, c) = node_certs();
        let now = UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        assert!(c.admit(&caller(&[ROLE_NODE], 0, 200 * 86_400)).is_ok());
        assert_eq!(c.warning("app1-cp", now), None);
        let soon = now + Duration::from_secs(80 * 86_400);
        let w = c.warning("app1-cp", soon).expect("expires in 20 days");
        assert!(w.contains("expires in 20 days"), "{w}");
        assert!(w.contains("hostctl certs renew app1-cp"), "{w}");
    }

    #[test]
    fn an_enrolment_is_dated_at_or_after_the_floor_and_retires_the_rest() {
        let (_d, c) = node_certs();
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let floor = c.revoke("app1-cp", now).expect("revoke");
        // Re-enrolled in the same second as the revocation.
        let dated = c.enrolling("app1-cp", now).expect("enrolling");
        assert!(dated >= floor);
        let secs = dated
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        assert!(c.admit(&caller(&[ROLE_NODE], secs, 2_000_000)).is_ok());
        // The revoked floor's second is refused too: the new one is newer.
        let at_floor = floor
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        assert!(c.admit(&caller(&[ROLE_NODE], at_floor, 2_000_000)).is_err());
    }
}
