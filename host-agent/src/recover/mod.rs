//! The spec's recovery scenarios (§10.3, issue 20 item 4) as commands that
//! print their steps and their measured time against the scenario's RTO.
//!
//! Every scenario has the same shape, so the next ones follow this one:
//! - a [`record::Record`] under `$HOSTCTL_HOME/recover/<cluster>-<scenario>.json`
//!   of what the recovery restores *from* (chosen once, in its first step)
//!   and the steps already done, so a rerun after a failure continues with
//!   the same source instead of choosing again (a newer snapshot may have
//!   arrived in between) and skips what is done, like `up`;
//! - a refusal before anything is touched when the source belongs to
//!   another cluster than the one asked;
//! - the time measured from the record's creation (the first attempt), so
//!   a recovery that needed two runs is judged on its whole duration.
//!
//! - [`etcd`]: etcd data damage (RTO 30 min);
//! - [`resource`]: a deleted resource (RTO 5 min);
//! - [`node`]: a lost control-plane node (RTO 1 h);
//! - [`cluster`]: a lost cluster (RTO 2 h).

pub mod cluster;
pub mod etcd;
pub mod identity;
pub mod node;
pub mod record;
pub mod resource;
pub mod vault;
pub mod velero;

use std::path::PathBuf;
use std::time::Duration;

/// Why a recovery stopped; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The source's own metadata names another cluster.
    #[error(
        "{file}: its field `cluster` is {claimed:?}, not {cluster:?}: this is another \
         cluster's snapshot and restoring it would replace {cluster}'s state with \
         {claimed}'s; choose one of {cluster}'s (`hostctl etcd list {cluster}`), or \
         recover {claimed} with `hostctl recover etcd {claimed}`"
    )]
    WrongCluster {
        file: PathBuf,
        cluster: String,
        claimed: String,
    },
    /// A rerun asked for another source than the interrupted run chose.
    #[error(
        "an interrupted recovery of {cluster} ({record}) restores {recorded}, not {asked}; \
         run it again without --snapshot to finish it, or add --restart to start over \
         with {asked}"
    )]
    OtherSource {
        cluster: String,
        record: PathBuf,
        recorded: String,
        asked: String,
    },
    /// Nothing to restore from.
    #[error("no etcd snapshot of {cluster} {where_}; {fix}")]
    NoSnapshot {
        cluster: String,
        where_: String,
        fix: String,
    },
    /// An object of the store does not match its metadata.
    #[error(
        "{object}: {what} is {actual}, its metadata says {expected}; the copy is not \
         trusted and was removed"
    )]
    Mismatch {
        object: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    /// The file fails etcd's own rule (`db ‖ sha256(db)`): truncated or
    /// damaged, whatever the store's digest said.
    #[error("{object}: not a whole etcd snapshot: {source}; the copy was removed")]
    Damaged {
        object: String,
        #[source]
        source: proto::snapshot::IntegrityError,
    },
    /// A snapshot's metadata could not be read.
    #[error("{file}: not a snapshot's metadata: {reason}")]
    BadMetadata { file: String, reason: String },
    /// The host already holds a different file under the fetched name (the
    /// store never replaces a stored snapshot).
    #[error(
        "{path} exists with other contents than the store's copy; the host's file is \
         kept: restore it by name (`--snapshot`) or move it away"
    )]
    Conflict { path: PathBuf },
    #[error(transparent)]
    Snapshot(#[from] crate::snapshots::SnapshotError),
    #[error(transparent)]
    Storage(#[from] crate::storage::error::StorageError),
    #[error(transparent)]
    Io(#[from] fsio::Error),
    #[error(transparent)]
    Json(#[from] fsio::JsonError),
}

/// `4m12s`, `1h02m`, `9s`: how the steps and the total are printed.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// The closing line: `recovered in 4m12s (RTO 30m: met)`.
pub fn verdict(elapsed: Duration, rto: Duration) -> String {
    let judged = if elapsed <= rto { "met" } else { "missed" };
    format!(
        "recovered in {} (RTO {}: {judged})",
        human(elapsed),
        human_rto(rto)
    )
}

/// An RTO as the spec writes it: `30m`, `1h`, `2h`.
fn human_rto(rto: Duration) -> String {
    let m = rto.as_secs() / 60;
    if m.is_multiple_of(60) {
        format!("{}h", m / 60)
    } else {
        format!("{m}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_judged_against_the_rto() {
        let rto = Duration::from_secs(30 * 60);
        assert_eq!(
            verdict(Duration::from_secs(252), rto),
            "recovered in 4m12s (RTO 30m: met)"
        );
        assert_eq!(
            verdict(Duration::from_secs(31 * 60), rto),
            "recovered in 31m00s (RTO 30m: missed)"
        );
        assert_eq!(
            verdict(Duration::from_secs(3720), Duration::from_secs(3600)),
            "recovered in 1h02m (RTO 1h: missed)"
        );
    }
}
