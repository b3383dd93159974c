//! A lost cluster (spec §10.3, RTO 2 h): every machine of the cluster is
//! gone, the host (PKI, addresses, the object store with the cluster's
//! Velero backups) survives. The recovery re-provisions the cluster with
//! `up`'s own graph — same PKI and addresses — with its Velero location
//! **read-only**, waits for Velero to sync the old backups from the
//! cluster's bucket, restores the newest backup of the daily schedule (or
//! a named one), and only then hands the location back (read-write, the
//! next `up`) and the cluster to GitOps (platform-addons §5).
//!
//! Why read-only first: a new Velero's schedule takes its first backup at
//! once; with a writable location that backup of the *empty* cluster
//! would become the schedule's newest, and garbage collection could
//! expire the backups being restored. Any `up` run while the recovery is
//! unfinished keeps the location read-only ([`velero_read_only`]).
//!
//! For mgmt, Vault comes first ([`MGMT_STEPS`], `recover::vault`): the
//! rebuilt Vault gets the host's newest raft snapshot and the old key
//! before anything reads secrets from it again.
//!
//! This module holds what needs no cluster: the steps and the rule `up`
//! follows; `commands::recover::cluster` runs the steps.

use super::record::Record;
use std::path::Path;
use std::time::Duration;

/// The record's scenario name (`recover/<cluster>-cluster.json`).
pub const SCENARIO: &str = "cluster";
/// The spec's recovery-time objective for a lost cluster.
pub const RTO: Duration = Duration::from_secs(2 * 60 * 60);
/// The step after which the location may be written again.
pub const RESTORE_STEP: &str = "restore";

/// The steps, in order: the record's id and the printed title.
pub const STEPS: [(&str, &str); 7] = [
    ("lost", "check the cluster is lost"),
    ("machines", "remove what is left of its machines"),
    (
        "provision",
        "re-provision it (same PKI and addresses), Velero read-only",
    ),
    ("backup", "choose the backup Velero synced from the store"),
    (RESTORE_STEP, "restore it"),
    (
        "hand-back",
        "Velero read-write again and the cluster back to GitOps",
    ),
    ("api", "wait for the API server"),
];

/// mgmt's steps: Vault first, right after the re-provisioning, so what
/// reads from it (External Secrets, cert-manager's issuer, on every
/// cluster) finds the old secrets when the hand-back `up` re-runs them.
pub const MGMT_STEPS: [(&str, &str); 8] = [
    STEPS[0],
    STEPS[1],
    STEPS[2],
    (
        "vault",
        "Vault first: the host's newest snapshot restored, unsealed with its key",
    ),
    STEPS[3],
    STEPS[4],
    STEPS[5],
    STEPS[6],
];

/// Whether `up` must install `cluster`'s Velero with its location
/// read-only: a recovery of that cluster is unfinished and has not
/// restored yet. A record that does not parse counts as unfinished (the
/// safe side: nothing is written to the bucket until it is sorted out).
pub fn velero_read_only(home: &Path, cluster: &str) -> bool {
    let path = Record::path(home, cluster, SCENARIO);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Record>(&bytes)
            .map(|r| !r.done.iter().any(|d| d.step == RESTORE_STEP))
            .unwrap_or(true),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn the_location_is_read_only_from_the_record_until_the_restore_is_done() {
        let home = tempfile::tempdir().unwrap();
        assert!(!velero_read_only(home.path(), "app1"), "no recovery");
        let mut record = Record::open(
            home.path(),
            SCENARIO,
            "app1",
            None,
            false,
            SystemTime::now(),
            |a, b| a == b,
        )
        .unwrap();
        record.complete("lost", Duration::from_secs(1)).unwrap();
        assert!(velero_read_only(home.path(), "app1"));
        assert!(!velero_read_only(home.path(), "app2"), "another cluster");
        record
            .complete(RESTORE_STEP, Duration::from_secs(1))
            .unwrap();
        assert!(!velero_read_only(home.path(), "app1"));
        std::fs::write(Record::path(home.path(), "app1", SCENARIO), b"{torn").unwrap();
        assert!(
            velero_read_only(home.path(), "app1"),
            "unreadable: stay safe"
        );
        record.finish().unwrap();
        assert!(!velero_read_only(home.path(), "app1"));
    }
}
