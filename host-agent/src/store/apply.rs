//! One batch of reports applied to the tables, in one write transaction;
//! the bounds of issue 13, item 8 are kept here on every report.

use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use proto::limits::MAX_REPORT_BYTES;
use proto::v1::HealthReport;
use redb::{Database, ReadableTable, Table};

use super::open::begin_write;
use super::{
    DEDUP, HISTORY, Ingested, Job, LATEST, Limits, NODES, StoreError, WINDOW, decode, encode, unix,
};

pub(super) type Outcome = Result<Ingested, StoreError>;

type History<'t> = Table<'t, (&'static str, u64), &'static [u8]>;

/// Applies and commits `batch`; the outcomes are in batch order and
/// nobody may hear them before this returns.
pub(super) fn apply(
    db: &Database,
    batch: &[Job],
    limits: &Limits,
) -> Result<Vec<Outcome>, redb::Error> {
    let txn = begin_write(db)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut tables = Tables {
            latest: txn.open_table(LATEST)?,
            history: txn.open_table(HISTORY)?,
            nodes: txn.open_table(NODES)?,
            window: txn.open_table(WINDOW)?,
            dedup: txn.open_table(DEDUP)?,
        };
        for job in batch {
            outcomes.push(tables.ingest(job, limits)?);
        }
    }
    txn.commit()?;
    Ok(outcomes)
}

struct Tables<'t> {
    latest: Table<'t, &'static str, &'static [u8]>,
    history: History<'t>,
    nodes: Table<'t, &'static str, (u64, u64)>,
    window: Table<'t, &'static str, (u64, u64)>,
    dedup: Table<'t, (&'static str, &'static str), (u64, u64)>,
}

impl Tables<'_> {
    fn ingest(&mut self, job: &Job, limits: &Limits) -> Result<Outcome, redb::Error> {
        let node = job.node.as_str();
        let r = &job.report;
        if r.agent_instance.is_empty() || r.seq == 0 {
            return Ok(Err(StoreError::Invalid(
                "agent_instance must be set and seq must start at 1".into(),
            )));
        }
        let size = r.encoded_len();
        if size > MAX_REPORT_BYTES {
            return Ok(Err(StoreError::TooLarge {
                size,
                limit: MAX_REPORT_BYTES,
            }));
        }
        let key = (node, r.agent_instance.as_str());
        let mark = self.dedup.get(key)?.map(|g| g.value());
        if mark.is_some_and(|(high_water, _)| r.seq <= high_water) {
            return Ok(Ok(Ingested::Duplicate));
        }
        let bytes = encode(r, job.received_at);
        let (next, dropped) = self.nodes.get(node)?.map(|g| g.value()).unwrap_or((0, 0));
        let (first, used) = self.window.get(node)?.map_or((next, 0), |g| g.value());
        self.history.insert((node, next), bytes.as_slice())?;
        let next = next + 1;
        let used = used.saturating_add(bytes.len() as u64);
        let window = trim_window(&mut self.history, node, first, next, used, limits)?;
        self.window.insert(node, window)?;
        self.nodes
            .insert(node, (next, dropped.saturating_add(r.dropped)))?;
        self.dedup.insert(key, (r.seq, unix(job.received_at)))?;
        if mark.is_none() {
            self.forget_old_instances(node, &r.agent_instance, limits.instances)?;
        }
        let newest = match self.latest.get(node)? {
            None => true,
            Some(g) => decode(node, g.value())
                .ok()
                .is_none_or(|old| !is_older(r, job.received_at, &old)),
        };
        if newest {
            self.latest.insert(node, bytes.as_slice())?;
        }
        Ok(Ok(Ingested::Stored))
    }

    /// Keeps the dedup marks of the newest `keep` instances of `node`
    /// (by last update; `current`, just added, always stays). Runs only
    /// when an instance is new, over at most `keep + 1` marks.
    fn forget_old_instances(
        &mut self,
        node: &str,
        current: &str,
        keep: usize,
    ) -> Result<(), redb::Error> {
        let mut marks = Vec::new();
        for entry in self.dedup.range((node, "")..)? {
            let (k, v) = entry?;
            let (n, instance) = k.value();
            if n != node {
                break;
            }
            if instance != current {
                marks.push((v.value().1, instance.to_owned()));
            }
        }
        if marks.len() < keep {
            return Ok(());
        }
        marks.sort_unstable_by(|a, b| b.cmp(a)); // newest first
        for (_, instance) in marks.into_iter().skip(keep - 1) {
            self.dedup.remove((node, instance.as_str()))?;
        }
        Ok(())
    }
}

/// Removes the oldest reports of `node` until its window `first..next`
/// holds at most `limits.history` reports and `limits.node_bytes` bytes
/// (the newest report always stays). Returns the new (first, bytes).
pub(super) fn trim_window(
    history: &mut History<'_>,
    node: &str,
    mut first: u64,
    next: u64,
    mut bytes: u64,
    limits: &Limits,
) -> Result<(u64, u64), redb::Error> {
    while next.saturating_sub(first) > 1
        && (next - first > limits.history || bytes > limits.node_bytes)
    {
        if let Some(len) = history.remove((node, first))?.map(|g| g.value().len()) {
            bytes = bytes.saturating_sub(len as u64);
        }
        first += 1;
    }
    Ok((first.min(next), bytes))
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
