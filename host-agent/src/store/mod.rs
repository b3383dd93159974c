//! The daemon's crash-safe report store.
//!
//! Choice: [`redb`], a pure-Rust embedded B-tree database with ACID
//! transactions and `fsync`ed commits (copy-on-write pages, so a crash in
//! the middle of a commit leaves the previous state intact). Atomic-rename
//! snapshot files would rewrite every node's data on each report; at
//! thousands of reports per second that is not honest about acks and not
//! cheap. redb lets one small transaction carry many reports instead.
//!
//! **Group commit**: every report goes to one writer thread
//! ([`writer`]); the thread takes whatever has queued up while the previous
//! commit was running (up to [`MAX_BATCH`]), applies it in one write
//! transaction, commits with `Durability::Immediate`, and only then answers
//! each submitter. A node's report is therefore acknowledged only once it
//! is on disk, and the cost of an `fsync` is shared by everything that
//! arrived during the previous one.
//!
//! Tables (the file is `$HOSTCTL_HOME/state.redb`):
//! - `latest`:  node → newest [`StoredReport`] (by `taken_at`, a time
//!   later than the host's receipt counting as the receipt);
//! - `history`: (node, index) → [`StoredReport`], a window of the last
//!   `history_limit` reports per node (indices are contiguous per node, so
//!   pruning removes exactly `index - history_limit`);
//! - `nodes`:   node → (next index, sum of `dropped` the node declared);
//! - `dedup`:   (node, agent_instance) → (highest stored seq, unix seconds
//!   of the last update): the high-water mark that drops re-sent reports.

mod writer;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use prost::Message;
use proto::v1::{HealthReport, StoredReport};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

pub(crate) const LATEST: TableDefinition<&str, &[u8]> = TableDefinition::new("latest");
pub(crate) const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
pub(crate) const NODES: TableDefinition<&str, (u64, u64)> = TableDefinition::new("nodes");
pub(crate) const DEDUP: TableDefinition<(&str, &str), (u64, u64)> = TableDefinition::new("dedup");

/// Most reports applied in one write transaction; bounds commit latency
/// when a burst (a back-fill of many nodes) arrives at once.
pub const MAX_BATCH: usize = 4096;

/// Default history window per node: one hour at the node agent's 1 s
/// minimum interval, many hours at the usual 10 s.
pub const DEFAULT_HISTORY_LIMIT: u64 = 3600;

/// Store failures. The daemon maps all of them to `UNAVAILABLE` for nodes
/// (which then keep the report buffered and re-send it).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state store {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("state store read failed: {0}")]
    Read(String),
    #[error("state store write failed: {0}")]
    Write(String),
    #[error("stored report for {node} is damaged: {reason}")]
    Corrupt { node: String, reason: String },
    #[error("the state store is closed")]
    Closed,
    #[error("invalid report: {0}")]
    Invalid(String),
}

fn read_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Read(e.to_string())
}

/// What happened to one submitted report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// New: written to `history` (and `latest` when it is the newest).
    Stored,
    /// Its (agent_instance, seq) was at or below the high-water mark:
    /// already stored earlier, acknowledged again, not stored twice.
    Duplicate,
}

/// Everything the store knows about one node, for `Control.Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    pub latest: StoredReport,
    /// When the host last received a report from the node (the newest
    /// history entry; a back-filled report is not `latest` but proves the
    /// node is up). What staleness is judged by.
    pub last_received_at: Option<SystemTime>,
    /// Reports currently in the history window.
    pub stored: u64,
    /// Sum of `HealthReport.dropped` the node declared.
    pub dropped: u64,
}

/// One report waiting for the writer thread.
pub(crate) struct Job {
    pub node: String,
    pub report: HealthReport,
    pub received_at: SystemTime,
    pub reply: oneshot::Sender<Result<Ingested, StoreError>>,
}

/// What the writer thread receives.
pub(crate) enum Msg {
    Report(Box<Job>),
    /// Commit what is queued before this, then exit.
    Stop,
}

/// Handle to the store; cheap to clone (all clones share one writer).
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    jobs: mpsc::UnboundedSender<Msg>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    history_limit: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("history_limit", &self.history_limit)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path` and starts its writer
    /// thread. redb holds an exclusive file lock, so a second daemon on the
    /// same home fails here rather than corrupting the file.
    pub fn open(path: &Path, history_limit: u64) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        let db = Database::create(path).map_err(|e| open_err(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| open_err(e.to_string()))?;
        {
            txn.open_table(LATEST)
                .map_err(|e| open_err(e.to_string()))?;
            txn.open_table(HISTORY)
                .map_err(|e| open_err(e.to_string()))?;
            txn.open_table(NODES).map_err(|e| open_err(e.to_string()))?;
            txn.open_table(DEDUP).map_err(|e| open_err(e.to_string()))?;
        }
        txn.commit().map_err(|e| open_err(e.to_string()))?;
        let db = Arc::new(db);
        let (jobs, rx) = mpsc::unbounded_channel();
        let limit = history_limit.max(1);
        let handle = writer::spawn(db.clone(), rx, limit).map_err(|e| open_err(e.to_string()))?;
        Ok(Store {
            db,
            jobs,
            writer: Arc::new(Mutex::new(Some(handle))),
            history_limit: limit,
        })
    }

    /// Queues `report` from `node` and returns a receiver that resolves once
    /// the report is committed (or found to be a duplicate). Submitting
    /// without awaiting lets one stream pipeline many reports into a single
    /// commit.
    pub fn submit(
        &self,
        node: &str,
        report: HealthReport,
        received_at: SystemTime,
    ) -> oneshot::Receiver<Result<Ingested, StoreError>> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            node: node.to_owned(),
            report,
            received_at,
            reply,
        };
        if let Err(mpsc::error::SendError(Msg::Report(job))) =
            self.jobs.send(Msg::Report(Box::new(job)))
        {
            let _ = job.reply.send(Err(StoreError::Closed));
        }
        rx
    }

    /// Submits and waits for the commit.
    pub async fn ingest(
        &self,
        node: &str,
        report: HealthReport,
        received_at: SystemTime,
    ) -> Result<Ingested, StoreError> {
        self.submit(node, report, received_at)
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// The newest report, window size and dropped count of every node that
    /// ever reported.
    pub fn nodes(&self) -> Result<BTreeMap<String, NodeRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let latest = txn.open_table(LATEST).map_err(read_err)?;
        let nodes = txn.open_table(NODES).map_err(read_err)?;
        let history = txn.open_table(HISTORY).map_err(read_err)?;
        let mut out = BTreeMap::new();
        for entry in latest.iter().map_err(read_err)? {
            let (k, v) = entry.map_err(read_err)?;
            let node = k.value().to_owned();
            let latest = decode(&node, v.value())?;
            let (next, dropped) = nodes
                .get(node.as_str())
                .map_err(read_err)?
                .map(|g| g.value())
                .unwrap_or((0, 0));
            let stored = next.min(self.history_limit);
            let last_received_at = match next.checked_sub(1) {
                Some(index) => history
                    .get((node.as_str(), index))
                    .map_err(read_err)?
                    .map(|g| decode(&node, g.value()))
                    .transpose()?
                    .and_then(|s| s.received_at)
                    .as_ref()
                    .and_then(proto::system_time),
                None => None,
            }
            .or_else(|| latest.received_at.as_ref().and_then(proto::system_time));
            out.insert(
                node,
                NodeRecord {
                    latest,
                    last_received_at,
                    stored,
                    dropped,
                },
            );
        }
        Ok(out)
    }

    /// The history window of `node`, oldest first; `limit` > 0 keeps only
    /// the newest `limit` entries.
    pub fn history(&self, node: &str, limit: usize) -> Result<Vec<StoredReport>, StoreError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(HISTORY).map_err(read_err)?;
        let range = table
            .range((node, 0u64)..=(node, u64::MAX))
            .map_err(read_err)?;
        let mut out = Vec::new();
        for entry in range {
            let (_, v) = entry.map_err(read_err)?;
            out.push(decode(node, v.value())?);
        }
        if limit > 0 && out.len() > limit {
            out.drain(..out.len() - limit);
        }
        Ok(out)
    }

    /// Stops the writer after everything already submitted is committed.
    /// Later submissions fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let _ = self.jobs.send(Msg::Stop);
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

pub(crate) fn encode(report: &HealthReport, received_at: SystemTime) -> Vec<u8> {
    StoredReport {
        report: Some(report.clone()),
        received_at: Some(proto::timestamp(received_at)),
    }
    .encode_to_vec()
}

pub(crate) fn decode(node: &str, bytes: &[u8]) -> Result<StoredReport, StoreError> {
    StoredReport::decode(bytes).map_err(|e| StoreError::Corrupt {
        node: node.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report(instance: &str, seq: u64, taken_at: SystemTime) -> HealthReport {
        HealthReport {
            agent_instance: instance.into(),
            seq,
            taken_at: Some(proto::timestamp(taken_at)),
            node: "n1".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn an_older_back_filled_report_is_kept_in_history_but_not_shown_as_latest()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("s.redb"), 10)?;
        let now = SystemTime::now();
        let fresh = report("new", 1, now);
        let old = report("old", 7, now - Duration::from_secs(600));
        assert_eq!(store.ingest("n1", fresh, now).await?, Ingested::Stored);
        assert_eq!(store.ingest("n1", old, now).await?, Ingested::Stored);
        let nodes = store.nodes()?;
        let latest = nodes["n1"].latest.report.as_ref().ok_or("no latest")?;
        assert_eq!(latest.agent_instance, "new");
        assert_eq!(nodes["n1"].stored, 2);
        store.close().await;
        Ok(())
    }

    #[tokio::test]
    async fn a_report_dated_in_the_future_does_not_stay_latest_and_receipt_is_tracked()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("s.redb"), 10)?;
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let year_2099 = SystemTime::UNIX_EPOCH + Duration::from_secs(4_070_908_800);
        store.ingest("n1", report("i", 1, year_2099), t0).await?;
        let t1 = t0 + Duration::from_secs(10);
        store.ingest("n1", report("i", 2, t1), t1).await?;
        // A back-filled report received later but taken before: not latest,
        // but it is the newest receipt.
        let t2 = t1 + Duration::from_secs(10);
        store
            .ingest("n1", report("j", 1, t0 - Duration::from_secs(60)), t2)
            .await?;
        let nodes = store.nodes()?;
        let latest = nodes["n1"].latest.report.as_ref().ok_or("no latest")?;
        assert_eq!((latest.agent_instance.as_str(), latest.seq), ("i", 2));
        assert_eq!(nodes["n1"].last_received_at, Some(t2));
        store.close().await;
        Ok(())
    }

    #[tokio::test]
    async fn seq_zero_and_missing_instance_are_refused_and_closed_store_refuses()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("s.redb"), 10)?;
        let now = SystemTime::now();
        let bad = store.ingest("n1", report("i", 0, now), now).await;
        assert!(matches!(bad, Err(StoreError::Invalid(_))));
        let bad = store.ingest("n1", report("", 1, now), now).await;
        assert!(matches!(bad, Err(StoreError::Invalid(_))));
        store.close().await;
        let late = store.ingest("n1", report("i", 1, now), now).await;
        assert!(matches!(late, Err(StoreError::Closed)));
        assert!(store.nodes()?.is_empty());
        Ok(())
    }
}
