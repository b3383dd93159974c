//! The recovery-point objective: how much of a cluster's state could be
//! lost if its etcd had to be restored now, judged from the newest snapshot
//! in the host's store. `hostctl status` shows it per cluster.
//!
//! "Newest" and "age" are the host's: the store lists snapshots in the
//! order it received them, and a snapshot's `taken_at_unix` is never later
//! than its receipt ([`super::store`]), so a node whose clock says 2099
//! cannot make an overdue snapshot look fresh.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::SnapshotInfo;

/// The specification's RPO: at most 24 hours of etcd state may be lost.
/// The node agents' default schedule (one snapshot every 24 h) is sized to
/// it, so a breach means a snapshot is overdue or failed to arrive.
pub const RPO: Duration = Duration::from_secs(24 * 3600);

/// A cluster's newest stored snapshot against [`RPO`]
/// (`hostctl status -o json`, `clusters[].snapshot`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotHealth {
    /// File name of the newest snapshot, `null` when there is none.
    pub latest: Option<String>,
    /// When it was taken (RFC 3339).
    pub taken_at: Option<String>,
    pub age_seconds: Option<u64>,
    /// [`RPO`] in seconds, so readers need not know the constant.
    pub rpo_seconds: u64,
    /// The newest snapshot is older than the RPO, or there is none although
    /// the cluster's control plane has reported (so etcd should exist).
    pub rpo_breach: bool,
}

/// Judges `latest` (the newest snapshot, if any) at `now`.
/// `control_plane_reported` decides whether having none is a breach: a
/// cluster still being built has nothing to snapshot yet.
pub fn assess(
    latest: Option<&SnapshotInfo>,
    control_plane_reported: bool,
    now: SystemTime,
) -> SnapshotHealth {
    let age = latest.map(|i| i.age(now));
    SnapshotHealth {
        latest: latest.map(|i| i.file.clone()),
        taken_at: latest.map(|i| {
            proto::Timestamp {
                seconds: i.taken_at_unix,
                nanos: 0,
            }
            .to_string()
        }),
        age_seconds: age.map(|a| a.as_secs()),
        rpo_seconds: RPO.as_secs(),
        rpo_breach: match age {
            Some(a) => a > RPO,
            None => control_plane_reported,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn taken(hours_ago: u64, now: SystemTime) -> SnapshotInfo {
        let at = now - Duration::from_secs(hours_ago * 3600);
        let unix = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        SnapshotInfo {
            cluster: "app1".into(),
            file: format!("{}-rev7.db", proto::snapshot::utc_stamp(unix)),
            node: "app1-cp".into(),
            revision: 7,
            revision_exact: true,
            etcd_version: "3.5.21".into(),
            taken_at: proto::snapshot::utc_stamp(unix),
            taken_at_unix: unix as i64,
            sha256: "00".repeat(32),
            size: 1024 + 32,
            origin: "scheduled".into(),
        }
    }

    #[test]
    fn a_snapshot_older_than_the_rpo_is_a_breach() {
        let now = SystemTime::now();
        let h = assess(Some(&taken(25, now)), true, now);
        assert!(h.rpo_breach, "{h:?}");
        assert_eq!(h.age_seconds, Some(25 * 3600));
        assert_eq!(h.rpo_seconds, 86_400);
        assert!(
            h.taken_at.as_deref().is_some_and(|t| t.ends_with('Z')),
            "{h:?}"
        );
    }

    #[test]
    fn a_recent_snapshot_is_within_the_rpo() {
        let now = SystemTime::now();
        let h = assess(Some(&taken(23, now)), true, now);
        assert!(!h.rpo_breach, "{h:?}");
        assert!(h.latest.is_some());
    }

    #[test]
    fn none_is_a_breach_only_once_the_control_plane_reported() {
        let now = SystemTime::now();
        assert!(assess(None, true, now).rpo_breach);
        let building = assess(None, false, now);
        assert!(!building.rpo_breach);
        assert_eq!(building.latest, None);
    }
}
