//! Autonomous snapshots: the node takes one every interval whether or not
//! the host is reachable, keeps the newest few locally, and a separate
//! shipper uploads the ones the host has not stored yet, retrying with the
//! same capped, jittered backoff as the report sender. Taking and shipping
//! only share the directory, so an outage never delays a snapshot.
//! Each upload connects with the node's current identity ([`HostLink`]),
//! so a renewed certificate is used from the next upload on.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::v1::snapshot_sink_client::SnapshotSinkClient;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};

use super::EtcdTarget;
use super::file::send_file;
use super::local::{LocalEntry, LocalSnapshots};
use super::snapshot::Taker;
use crate::backoff::Backoff;
use crate::host_link::HostLink;
use telemetry::error_chain::chain;

/// Failed attempts are retried from this delay, doubling up to the interval
/// (at most ten minutes): etcd is not up until kubeadm init has run.
const RETRY_BASE: Duration = Duration::from_secs(5);
const RETRY_CAP: Duration = Duration::from_secs(600);

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("connecting to the host: {}", chain(.0))]
    Connect(#[source] tonic::transport::Error),
    #[error("the host refused the snapshot: {}", .0.message())]
    Refused(tonic::Status),
    #[error(transparent)]
    Local(#[from] super::EtcdError),
}

/// Everything the schedule needs.
pub struct Schedule {
    pub target: EtcdTarget,
    pub taker: Taker,
    pub local: LocalSnapshots,
    pub interval: Duration,
    /// What the metrics endpoint reads ([`crate::metrics`]).
    pub metrics: Arc<crate::metrics::SnapshotMetrics>,
}

/// Runs the schedule and the shipper forever, after removing what a
/// snapshot interrupted by the agent's last exit left behind.
pub async fn run(schedule: Schedule, host: HostLink) {
    if let Err(e) = schedule.local.remove_leftovers().await {
        warn!(error = %e, "cannot remove leftovers of interrupted snapshots");
    }
    let shipped = Arc::new(Notify::new());
    let local = schedule.local.clone();
    tokio::join!(
        take_loop(&schedule, &shipped),
        ship_loop(&local, &host, &shipped, &schedule.metrics)
    );
}

/// When the next snapshot is due: an interval after the newest local one
/// (so restarts do not reset the clock), now if there is none.
async fn next_due(schedule: &Schedule) -> Duration {
    let newest = match schedule.local.list().await {
        Ok(list) => list.last().map(|e| e.meta.taken_at_unix),
        Err(_) => None,
    };
    let Some(taken) = newest else {
        return Duration::ZERO;
    };
    let taken = SystemTime::UNIX_EPOCH + Duration::from_secs(taken.max(0) as u64);
    let age = SystemTime::now()
        .duration_since(taken)
        .unwrap_or(Duration::ZERO);
    schedule.interval.saturating_sub(age)
}

/// How often a node without etcd yet looks again, quietly.
const NOT_SET_UP_POLL: Duration = Duration::from_secs(30);

async fn take_loop(schedule: &Schedule, shipped: &Notify) {
    let mut retry = Backoff::new(RETRY_BASE, schedule.interval.clamp(RETRY_BASE, RETRY_CAP));
    let mut wait = next_due(schedule).await;
    let mut said_not_set_up = false;
    loop {
        tokio::time::sleep(wait).await;
        // Not a failure: etcd is not there until kubeadm init (never, under
        // the local provider). Said once, not warned every 30 s.
        if !schedule.target.is_set_up() {
            if !said_not_set_up {
                info!(
                    "no etcd on this node yet (kubeadm init has not run here); scheduled snapshots start once it has"
                );
                said_not_set_up = true;
            }
            wait = NOT_SET_UP_POLL;
            continue;
        }
        let started = std::time::Instant::now();
        let saved = schedule.local.save(&schedule.target, &schedule.taker).await;
        match &saved {
            Ok(_) => schedule.metrics.taken.inc(),
            Err(_) => schedule.metrics.failed.inc(),
        }
        schedule
            .metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        match saved {
            Ok(entry) => {
                info!(
                    file = %entry.db.display(),
                    revision = entry.meta.revision,
                    size = entry.meta.size,
                    "scheduled etcd snapshot taken"
                );
                retry.reset();
                shipped.notify_one();
                wait = schedule.interval;
            }
            Err(e) => {
                wait = retry.next_delay().max(RETRY_BASE);
                warn!(error = %e, retry_in = ?wait, "scheduled etcd snapshot failed");
            }
        }
    }
}

async fn ship_loop(
    local: &LocalSnapshots,
    host: &HostLink,
    wake: &Notify,
    metrics: &crate::metrics::SnapshotMetrics,
) {
    let mut backoff = Backoff::standard();
    loop {
        let pending = match local.pending().await {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot list local snapshots");
                Vec::new()
            }
        };
        if pending.is_empty() {
            wake.notified().await;
            continue;
        }
        for entry in pending {
            match ship(host, &entry).await {
                Ok(stored_as) => {
                    metrics.shipped.inc();
                    if let Err(e) = local.mark_shipped(&entry).await {
                        warn!(error = %e, "snapshot shipped but not marked; it will be re-sent (the host de-duplicates)");
                    }
                    info!(file = %entry.db.display(), stored_as, "snapshot shipped to the host");
                    host.note_success();
                    backoff.reset();
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    // The whole chain: a TLS alert about the certificate
                    // sits below the status's own message.
                    let (code, text) = match &e {
                        ShipError::Refused(s) => (Some(s.code()), chain(s)),
                        other => (None, other.to_string()),
                    };
                    if host.note_failure("snapshot upload", code, &text) {
                        tracing::debug!(error = %e, retry_in = ?delay, "shipping a snapshot failed");
                    } else {
                        warn!(error = %e, retry_in = ?delay, "shipping a snapshot failed");
                    }
                    tokio::time::sleep(delay).await;
                    break;
                }
            }
        }
    }
}

/// Uploads one local snapshot with the current identity; returns the
/// host's name for it.
pub async fn ship(host: &HostLink, entry: &LocalEntry) -> Result<String, ShipError> {
    let channel = host
        .endpoint()
        .map_err(ShipError::Connect)?
        .connect()
        .await
        .map_err(ShipError::Connect)?;
    let (tx, rx) = mpsc::channel(4);
    let mut client = SnapshotSinkClient::new(channel);
    let call = client.upload_snapshot(ReceiverStream::new(rx));
    let send = async {
        let r = send_file(&entry.db, entry.meta.to_proto(), &tx).await;
        drop(tx);
        r
    };
    let (answer, sent) = tokio::join!(call, send);
    let response = answer.map_err(ShipError::Refused)?.into_inner();
    sent?;
    Ok(response.stored_as)
}
