//! The bounded buffer of reports not yet acknowledged by the host.
//!
//! While the host is unreachable reports pile up here; when it is full the
//! oldest is dropped. Drops are counted so the host learns how much history
//! it missed: each new report carries the drops since the previous report
//! was taken, and when a report that carried a count is itself dropped its
//! count moves on to the next report. The sum of `dropped` over the
//! reports the host receives is therefore exactly the number it never got.

use std::collections::VecDeque;

use proto::v1::HealthReport;

/// Reports awaiting acknowledgement, oldest first.
#[derive(Debug)]
pub struct ReportBuffer {
    reports: VecDeque<HealthReport>,
    capacity: usize,
    pending_dropped: u64,
    total_dropped: u64,
}

impl ReportBuffer {
    /// An empty buffer holding at most `capacity` (≥ 1) reports.
    pub fn new(capacity: usize) -> Self {
        ReportBuffer {
            reports: VecDeque::with_capacity(capacity.clamp(1, 4096)),
            capacity: capacity.max(1),
            pending_dropped: 0,
            total_dropped: 0,
        }
    }

    /// Adds a report, filling in its `dropped` count; drops the oldest
    /// report if the buffer is full.
    pub fn push(&mut self, mut report: HealthReport) {
        if self.reports.len() >= self.capacity
            && let Some(oldest) = self.reports.pop_front()
        {
            self.pending_dropped += 1 + oldest.dropped;
            self.total_dropped += 1;
        }
        report.dropped = std::mem::take(&mut self.pending_dropped);
        self.reports.push_back(report);
    }

    /// Forgets every report up to and including `seq`: the host stored them.
    pub fn ack(&mut self, seq: u64) {
        while self.reports.front().is_some_and(|r| r.seq <= seq) {
            self.reports.pop_front();
        }
    }

    /// The reports after `seq` (all of them for 0), in order: what a
    /// sender still has to transmit on the current connection.
    pub fn after(&self, seq: u64) -> impl Iterator<Item = &HealthReport> {
        self.reports.iter().filter(move |r| r.seq > seq)
    }

    /// Reports waiting for acknowledgement.
    pub fn len(&self) -> usize {
        self.reports.len()
    }

    /// Whether every report has been acknowledged.
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Reports dropped since the agent started (for logs).
    pub fn total_dropped(&self) -> u64 {
        self.total_dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seq: u64) -> HealthReport {
        HealthReport {
            seq,
            ..Default::default()
        }
    }

    fn seqs(b: &ReportBuffer, after: u64) -> Vec<u64> {
        b.after(after).map(|r| r.seq).collect()
    }

    #[test]
    fn ack_removes_up_to_seq_and_after_skips_sent() {
        let mut b = ReportBuffer::new(10);
        (1..=5).for_each(|s| b.push(report(s)));
        assert_eq!(seqs(&b, 0), [1, 2, 3, 4, 5]);
        assert_eq!(seqs(&b, 3), [4, 5]);
        b.ack(2);
        assert_eq!(seqs(&b, 0), [3, 4, 5]);
        b.ack(99);
        assert!(b.is_empty());
    }

    #[test]
    fn overflow_drops_oldest_and_counts() {
        let mut b = ReportBuffer::new(3);
        (1..=5).for_each(|s| b.push(report(s)));
        assert_eq!(seqs(&b, 0), [3, 4, 5]);
        assert_eq!(b.total_dropped(), 2);
        let dropped: Vec<u64> = b.after(0).map(|r| r.dropped).collect();
        assert_eq!(dropped, [0, 1, 1]);
    }

    #[test]
    fn dropped_counts_sum_to_what_was_lost() {
        let mut b = ReportBuffer::new(4);
        let mut delivered = Vec::new();
        for s in 1..=100u64 {
            b.push(report(s));
            if s % 25 == 0 {
                delivered.extend(b.after(0).cloned());
                b.ack(s);
            }
        }
        let lost = 100 - delivered.len() as u64;
        assert_eq!(lost, b.total_dropped());
        assert_eq!(delivered.iter().map(|r| r.dropped).sum::<u64>(), lost);
    }
}
