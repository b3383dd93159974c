//! Takes a report every interval (± 10 % jitter, so many nodes do not
//! report in lockstep) and queues it, whether or not the host is reachable.

use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use super::{Outbox, SharedCollector};
use crate::backoff::jittered;

/// Identifies this process's reports; with `seq` it names one uniquely so
/// the host can drop duplicates after a resend.
pub fn new_instance_id() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// Runs forever: collect, number, queue, sleep.
pub async fn run(
    collector: SharedCollector,
    outbox: Arc<Outbox>,
    interval: Duration,
    instance: String,
) {
    // CPU usage is measured between two refreshes; give the first one a
    // meaningful window.
    tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
    let mut seq = 0u64;
    loop {
        if let Some(mut report) = collector.collect().await {
            seq += 1;
            report.seq = seq;
            report.agent_instance = instance.clone();
            outbox.push(report);
            let (queued, dropped) = outbox.stats();
            debug!(seq, queued, dropped, "report queued");
        }
        tokio::time::sleep(jittered(interval, 0.1, rand::random())).await;
    }
}
