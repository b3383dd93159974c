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
//! **Failures** (issue 13, item 2): a failed commit answers every report of
//! its batch with an error ([`StoreError::DiskFull`] when the disk is full)
//! and the writer reopens the database before the next batch — after an
//! I/O error redb refuses everything until it is reopened — so the store
//! recovers by itself once space returns. See [`writer`].
//!
//! **Bounds** (issue 13, item 8): per node, at most `history_limit`
//! reports and [`MAX_NODE_HISTORY_BYTES`] of them, each at most
//! [`proto::limits::MAX_REPORT_BYTES`], and the dedup marks of at most
//! [`MAX_INSTANCES_PER_NODE`] agent instances. Every commit records redb's
//! allocator state ("quick repair"), so opening after a crash does not
//! walk the whole file, and an open compacts a file much larger than what
//! it holds. See [`open`] and [`apply`].
//!
//! Tables (the file is `$HOSTCTL_HOME/state.redb`):
//! - `latest`:  node → newest [`StoredReport`] (by `taken_at`, a time
//!   later than the host's receipt counting as the receipt);
//! - `history`: (node, index) → [`StoredReport`], the node's window, from
//!   its first index (in `window`) to its next (in `nodes`);
//! - `nodes`:   node → (next index, sum of `dropped` the node declared);
//! - `window`:  node → (first index in `history`, bytes of its reports);
//! - `dedup`:   (node, agent_instance) → (highest stored seq, unix seconds
//!   of the last update): the high-water mark that drops re-sent reports.

mod apply;
#[cfg(test)]
mod faulty;
mod open;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use prost::Message;
use proto::v1::{HealthReport, StoredReport};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

pub(crate) const LATEST: TableDefinition<&str, &[u8]> = TableDefinition::new("latest");
pub(crate) const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
pub(crate) const NODES: TableDefinition<&str, (u64, u64)> = TableDefinition::new("nodes");
pub(crate) const WINDOW: TableDefinition<&str, (u64, u64)> = TableDefinition::new("window");
pub(crate) const DEDUP: TableDefinition<(&str, &str), (u64, u64)> = TableDefinition::new("dedup");

/// Most reports applied in one write transaction; bounds commit latency
/// when a burst (a back-fill of many nodes) arrives at once.
pub const MAX_BATCH: usize = 4096;

/// Default history window per node: one hour at the node agent's 1 s
/// minimum interval, many hours at the usual 10 s.
pub const DEFAULT_HISTORY_LIMIT: u64 = 3600;

/// Most bytes of reports (encoded `StoredReport`s) kept per node, whatever
/// the history limit: 64 MiB, a full default window of 18 KiB reports
/// (real ones are a few KiB), or 1024 reports at the largest size a node
/// may send. Older reports go first. With redb's overhead a node costs at
/// most about twice this on disk (see the `store_size` bench).
pub const MAX_NODE_HISTORY_BYTES: u64 = 64 * 1024 * 1024;

/// Agent instances whose dedup marks are kept per node (the newest by
/// last update). A node agent re-sends only under its current instance,
/// or the one before it right after a restart; a node restarting its
/// agent for every report can no longer grow the table.
pub const MAX_INSTANCES_PER_NODE: usize = 16;

/// The store's bounds; [`Store::open`] uses the defaults above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Reports kept per node (at least 1).
    pub history: u64,
    /// Bytes of reports kept per node (the newest report is always kept).
    pub node_bytes: u64,
    /// Agent instances remembered per node for dedup (at least 1).
    pub instances: usize,
}

impl Limits {
    /// The default bounds with a history window of `history` reports.
    pub fn with_history(history: u64) -> Limits {
        Limits {
            history: history.max(1),
            node_bytes: MAX_NODE_HISTORY_BYTES,
            instances: MAX_INSTANCES_PER_NODE,
        }
    }
}

/// Store failures. The daemon refuses a report with `RESOURCE_EXHAUSTED`
/// for [`StoreError::DiskFull`], `INVALID_ARGUMENT` for an invalid one and
/// `UNAVAILABLE` otherwise; the node keeps what was not acknowledged and
/// re-sends it. Cloneable (sources are shared) because one failed commit
/// answers every report of its batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state store {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: Arc<redb::Error>,
    },
    #[error("state store read failed: {source}")]
    Read {
        #[source]
        source: Arc<redb::Error>,
    },
    #[error("host disk full: the state store cannot write ({source})")]
    DiskFull {
        #[source]
        source: Arc<redb::Error>,
    },
    #[error("state store write failed: {source}")]
    Write {
        #[source]
        source: Arc<redb::Error>,
    },
    #[error("the state store is being reopened after a failed write")]
    Reopening,
    #[error("stored report for {node} is damaged: {source}")]
    Corrupt {
        node: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error("the state store is closed")]
    Closed,
    #[error("invalid report: {0}")]
    Invalid(String),
    #[error("report of {size} bytes refused: the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
}

impl StoreError {
    /// A failed write: [`StoreError::DiskFull`] when the disk (or quota)
    /// is full, else [`StoreError::Write`].
    pub(crate) fn write(e: impl Into<redb::Error>) -> StoreError {
        let source = Arc::new(e.into());
        if is_disk_full(&source) {
            StoreError::DiskFull { source }
        } else {
            StoreError::Write { source }
        }
    }
}

fn is_disk_full(e: &redb::Error) -> bool {
    let redb::Error::Io(io) = e else {
        return false;
    };
    matches!(
        io.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

fn read_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Read {
        source: Arc::new(e.into()),
    }
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

/// How the store (re)opens its database: the file at its path, or in
/// tests a backend that fails on demand.
pub(crate) type Opener = Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// What the handles and the writer thread share.
struct Inner {
    /// `None` only while the writer reopens it (or failed to).
    db: RwLock<Option<Database>>,
    opener: Opener,
    path: PathBuf,
    limits: Limits,
}

impl Inner {
    /// Runs `f` on the database; readers and the writer's transactions
    /// share the lock, only a reopen takes it exclusively.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(db) => f(db),
            None => Err(StoreError::Reopening),
        }
    }
}

/// Handle to the store; cheap to clone (all clones share one writer).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    jobs: mpsc::UnboundedSender<Msg>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path` with the default
    /// bounds and starts its writer thread. redb holds an exclusive file
    /// lock, so a second daemon on the same home fails here rather than
    /// corrupting the file.
    pub fn open(path: &Path, history_limit: u64) -> Result<Store, StoreError> {
        Store::open_with_limits(path, Limits::with_history(history_limit))
    }

    /// [`Store::open`] with explicit bounds.
    pub fn open_with_limits(path: &Path, limits: Limits) -> Result<Store, StoreError> {
        Store::open_with(path, open::file_opener(path), limits)
    }

    fn open_with(path: &Path, opener: Opener, limits: Limits) -> Result<Store, StoreError> {
        let limits = Limits {
            history: limits.history.max(1),
            instances: limits.instances.max(1),
            ..limits
        };
        let open_err = |source: redb::Error| StoreError::Open {
            path: path.display().to_string(),
            source: Arc::new(source),
        };
        let db = open::first_open(path, &opener, &limits).map_err(open_err)?;
        let inner = Arc::new(Inner {
            db: RwLock::new(Some(db)),
            opener,
            path: path.to_owned(),
            limits,
        });
        let (jobs, rx) = mpsc::unbounded_channel();
        let handle = writer::spawn(inner.clone(), rx).map_err(|e| open_err(e.into()))?;
        Ok(Store {
            inner,
            jobs,
            writer: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// The bounds this store keeps.
    pub fn limits(&self) -> Limits {
        self.inner.limits
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
        self.inner.with_db(|db| {
            let txn = db.begin_read().map_err(read_err)?;
            let latest = txn.open_table(LATEST).map_err(read_err)?;
            let nodes = txn.open_table(NODES).map_err(read_err)?;
            let window = txn.open_table(WINDOW).map_err(read_err)?;
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
                let first = window
                    .get(node.as_str())
                    .map_err(read_err)?
                    .map_or(next, |g| g.value().0);
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
                        stored: next.saturating_sub(first),
                        dropped,
                    },
                );
            }
            Ok(out)
        })
    }

    /// The history window of `node`, oldest first; `limit` > 0 keeps only
    /// the newest `limit` entries.
    pub fn history(&self, node: &str, limit: usize) -> Result<Vec<StoredReport>, StoreError> {
        self.inner.with_db(|db| {
            let txn = db.begin_read().map_err(read_err)?;
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
        })
    }

    /// Stops the writer after everything already submitted is committed
    /// (or refused: a broken store does not hold the stop up). Later
    /// submissions fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let _ = self.jobs.send(Msg::Stop);
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// Unix seconds (0 before the epoch): the dedup marks' update time.
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn encode(report: &HealthReport, received_at: SystemTime) -> Vec<u8> {
    StoredReport {
        report: Some(report.clone()),
        received_at: Some(proto::timestamp(received_at)),
    }
    .encode_to_vec()
}

pub(crate) fn decode(node: &str, bytes: &[u8]) -> Result<StoredReport, StoreError> {
    StoredReport::decode(bytes).map_err(|source| StoreError::Corrupt {
        node: node.to_owned(),
        source,
    })
}
