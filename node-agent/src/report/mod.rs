//! Health reports, sent on the node's own initiative.
//!
//! The scheduler takes a report every interval and puts it in the outbox;
//! the sender streams the outbox to the host and forgets what the host
//! acknowledges. The two only share the outbox, so a host outage never
//! delays or skips a measurement: reports wait (bounded) and are
//! back-filled with their original timestamps. Every report is kept within
//! the host's size limit before it is queued ([`size`]).

pub mod buffer;
pub mod certexpiry;
pub mod checks;
pub mod collector;
pub mod probe;
pub mod scheduler;
pub mod sender;
pub mod size;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use proto::v1::HealthReport;
use tokio::sync::watch;
use tracing::{debug, warn};

use buffer::{Pushed, ReportBuffer};
use collector::Collector;

/// The collector, shared by the scheduler and the `Health` RPC so both
/// measure the same way and sysinfo state is kept once.
#[derive(Clone)]
pub struct SharedCollector(Arc<Mutex<Collector>>);

impl SharedCollector {
    /// Shares `collector`.
    pub fn new(collector: Collector) -> Self {
        SharedCollector(Arc::new(Mutex::new(collector)))
    }

    /// Takes a report on the blocking pool (probes and file reads block).
    pub async fn collect(&self) -> Option<HealthReport> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || lock(&inner).collect())
            .await
            .ok()
    }

    /// Runs `f` with the collector (for static facts such as the kernel).
    pub fn with<T>(&self, f: impl FnOnce(&Collector) -> T) -> T {
        f(&lock(&self.0))
    }
}

/// A panic while holding the lock leaves consistent data (every update is
/// a plain assignment), so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the sender counts, for the metrics endpoint ([`crate::metrics`]).
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Reports written to a stream.
    pub sent: telemetry::metrics::Counter,
    /// Acknowledgements received for this instance's reports.
    pub acknowledged: telemetry::metrics::Counter,
    /// Report streams that ended and were opened again.
    pub reconnects: telemetry::metrics::Counter,
}

/// Reports waiting for the host, and a signal for each new one.
pub struct Outbox {
    buffer: Mutex<ReportBuffer>,
    counters: StreamCounters,
    latest: watch::Sender<u64>,
    /// Whether the last report queued had to be trimmed: a check that
    /// stays huge is warned about once, not at every interval.
    trimming: AtomicBool,
}

impl Outbox {
    /// An empty outbox keeping at most `capacity` reports.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Outbox {
            buffer: Mutex::new(ReportBuffer::new(capacity)),
            counters: StreamCounters::default(),
            latest: watch::Sender::new(0),
            trimming: AtomicBool::new(false),
        })
    }

    /// Queues a report (trimmed to the host's size limit, or dropped if it
    /// cannot be, saying so) and wakes the sender.
    pub fn push(&self, report: HealthReport) -> Pushed {
        let seq = report.seq;
        let pushed = lock(&self.buffer).push(report);
        match pushed {
            Pushed::Queued => self.trimming.store(false, Ordering::Relaxed),
            Pushed::Trimmed { from, to } => {
                if self.trimming.swap(true, Ordering::Relaxed) {
                    debug!(seq, size = from, trimmed_to = to, "report trimmed");
                } else {
                    warn!(
                        seq,
                        size = from,
                        trimmed_to = to,
                        limit = proto::limits::MAX_REPORT_BYTES,
                        "report over the host's size limit: long check messages and lists cut \
                         (the report says so in its report-size check; reports cut the same \
                         way are logged at debug until one fits again)"
                    );
                }
            }
            Pushed::DroppedOversize { size, limit } => warn!(
                seq,
                size,
                limit,
                "report dropped: {size} bytes even after trimming, over the host's limit of {limit}; the next report counts it in dropped_oversize"
            ),
        }
        self.latest.send_replace(seq);
        pushed
    }

    /// Copies of the queued reports after `seq`, in order.
    pub fn after(&self, seq: u64) -> Vec<HealthReport> {
        lock(&self.buffer).after(seq).cloned().collect()
    }

    /// The host stored everything up to `seq`.
    pub fn ack(&self, seq: u64) {
        lock(&self.buffer).ack(seq);
    }

    /// Reports queued and dropped so far, for logs.
    pub fn stats(&self) -> (usize, u64) {
        let b = lock(&self.buffer);
        (b.len(), b.total_dropped())
    }

    /// The sender's counters.
    pub fn counters(&self) -> &StreamCounters {
        &self.counters
    }

    /// Wakes on every push.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }
}
