//! The store's single writer thread: group commit (see the module doc of
//! [`crate::store`]). One thread because redb allows one write transaction
//! at a time anyway, and a plain thread keeps blocking `fsync`s off the
//! async runtime.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::v1::HealthReport;
use redb::{Database, ReadableTable};
use tokio::sync::mpsc::UnboundedReceiver;

use super::{
    DEDUP, HISTORY, Ingested, Job, LATEST, MAX_BATCH, Msg, NODES, StoreError, decode, encode,
};

/// High-water marks of agent instances not heard from for this long are
/// forgotten when the store opens (a node agent restarted long ago never
/// re-sends under its old instance id).
const DEDUP_KEEP: Duration = Duration::from_secs(7 * 86_400);

pub(super) fn spawn(
    db: Arc<Database>,
    rx: UnboundedReceiver<Msg>,
    history_limit: u64,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(&db, rx, history_limit))
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn run(db: &Database, mut rx: UnboundedReceiver<Msg>, history_limit: u64) {
    if let Err(e) = prune_dedup(db) {
        tracing::warn!("could not prune old dedup marks: {e}");
    }
    let mut batch: Vec<Job> = Vec::with_capacity(256);
    loop {
        let mut stop = false;
        match rx.blocking_recv() {
            None => return,
            Some(Msg::Stop) => stop = true,
            Some(Msg::Report(job)) => batch.push(*job),
        }
        // Everything that queued while the previous commit ran joins this one.
        while !stop && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Report(job)) => batch.push(*job),
                Ok(Msg::Stop) => stop = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit(db, &mut batch, history_limit);
        }
        if stop {
            rx.close();
            while let Ok(msg) = rx.try_recv() {
                if let Msg::Report(job) = msg {
                    let _ = job.reply.send(Err(StoreError::Closed));
                }
            }
            return;
        }
    }
}

/// Applies and commits `batch`, then answers every job: nobody hears
/// "stored" before the commit returned.
fn commit(db: &Database, batch: &mut Vec<Job>, history_limit: u64) {
    match apply(db, batch, history_limit) {
        Ok(outcomes) => {
            for (job, outcome) in batch.drain(..).zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
        }
        Err(e) => {
            let reason = e.to_string();
            tracing::error!("state store commit failed: {reason}");
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(StoreError::Write(reason.clone())));
            }
        }
    }
}

type Outcome = Result<Ingested, StoreError>;

fn apply(db: &Database, batch: &[Job], history_limit: u64) -> Result<Vec<Outcome>, redb::Error> {
    let txn = db.begin_write()?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut latest = txn.open_table(LATEST)?;
        let mut history = txn.open_table(HISTORY)?;
        let mut nodes = txn.open_table(NODES)?;
        let mut dedup = txn.open_table(DEDUP)?;
        for job in batch {
            let node = job.node.as_str();
            let r = &job.report;
            if r.agent_instance.is_empty() || r.seq == 0 {
                outcomes.push(Err(StoreError::Invalid(
                    "agent_instance must be set and seq must start at 1".into(),
                )));
                continue;
            }
            let key = (node, r.agent_instance.as_str());
            let high_water = dedup.get(key)?.map(|g| g.value().0).unwrap_or(0);
            if r.seq <= high_water {
                outcomes.push(Ok(Ingested::Duplicate));
                continue;
            }
            let bytes = encode(r, job.received_at);
            let (next, dropped) = nodes.get(node)?.map(|g| g.value()).unwrap_or((0, 0));
            history.insert((node, next), bytes.as_slice())?;
            if next >= history_limit {
                history.remove((node, next - history_limit))?;
            }
            nodes.insert(node, (next + 1, dropped.saturating_add(r.dropped)))?;
            dedup.insert(key, (r.seq, unix(job.received_at)))?;
            let newest = match latest.get(node)? {
                None => true,
                Some(g) => decode(node, g.value())
                    .ok()
                    .is_none_or(|old| !is_older(r, job.received_at, &old)),
            };
            if newest {
                latest.insert(node, bytes.as_slice())?;
            }
            outcomes.push(Ok(Ingested::Stored));
        }
    }
    txn.commit()?;
    Ok(outcomes)
}

/// When a report counts as taken for choosing "latest": its `taken_at`,
/// but never later than the host received it. A node whose clock runs
/// ahead (or lies) would otherwise pin one report dated in the future as
/// latest forever.
fn effective_taken(r: &HealthReport, received_at: SystemTime) -> (i64, i32) {
    let received = proto::timestamp(received_at);
    let received = (received.seconds, received.nanos);
    r.taken_at
        .map(|t| (t.seconds, t.nanos))
        .map_or(received, |t| t.min(received))
}

/// A back-filled report taken before the one already shown must not
/// replace it as "latest".
fn is_older(new: &HealthReport, received_at: SystemTime, old: &proto::v1::StoredReport) -> bool {
    let Some(old_report) = old.report.as_ref() else {
        return false;
    };
    let old_received = old
        .received_at
        .as_ref()
        .and_then(proto::system_time)
        .unwrap_or(UNIX_EPOCH);
    effective_taken(new, received_at) < effective_taken(old_report, old_received)
}

fn prune_dedup(db: &Database) -> Result<(), redb::Error> {
    let cutoff = unix(SystemTime::now()).saturating_sub(DEDUP_KEEP.as_secs());
    let txn = db.begin_write()?;
    {
        let mut dedup = txn.open_table(DEDUP)?;
        dedup.retain(|_, (_, updated)| updated >= cutoff)?;
    }
    txn.commit()?;
    Ok(())
}
