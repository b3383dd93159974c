//! The bounded buffer of reports not yet acknowledged by the host.
//!
//! While the host is unreachable reports pile up here; when it is full the
//! oldest is dropped. Drops are counted so the host learns how much history
//! it missed: each new report carries the drops since the previous report
//! was taken, and when a report that carried a count is itself dropped its
//! count moves on to the next report. The sum of `dropped` over the
//! reports the host receives is therefore exactly the number it never got.
//!
//! Nothing over the host's size limit is ever queued (issue 13, item 12):
//! a report is trimmed to fit ([`super::size`]) or, if it cannot be, not
//! queued but counted as dropped (and in `dropped_oversize`) like a report
//! lost to overflow. A report the host would refuse can therefore never
//! sit at the head of the backlog, re-sent on every reconnection.

use std::collections::VecDeque;

use proto::limits::MAX_REPORT_BYTES;
use proto::v1::HealthReport;

use super::size::{self, Fit};

/// Reports awaiting acknowledgement, oldest first.
#[derive(Debug)]
pub struct ReportBuffer {
    reports: VecDeque<HealthReport>,
    capacity: usize,
    limit: usize,
    pending_dropped: u64,
    pending_oversize: u64,
    total_dropped: u64,
    total_oversize: u64,
}

/// What [`ReportBuffer::push`] did with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued as taken.
    Queued,
    /// Queued after cutting it from `from` to `to` encoded bytes.
    Trimmed { from: usize, to: usize },
    /// Not queued: `size` encoded bytes even after cutting, over `limit`.
    DroppedOversize { size: usize, limit: usize },
}

impl ReportBuffer {
    /// An empty buffer holding at most `capacity` (≥ 1) reports, each
    /// within the host's limit ([`MAX_REPORT_BYTES`]).
    pub fn new(capacity: usize) -> Self {
        ReportBuffer {
            reports: VecDeque::with_capacity(capacity.clamp(1, 4096)),
            capacity: capacity.max(1),
            limit: MAX_REPORT_BYTES,
            pending_dropped: 0,
            pending_oversize: 0,
            total_dropped: 0,
            total_oversize: 0,
        }
    }

    /// Adds a report, filling in its `dropped` counts and fitting it to
    /// the size limit; drops the oldest report if the buffer is full, or
    /// this one if it cannot be made to fit.
    pub fn push(&mut self, mut report: HealthReport) -> Pushed {
        // The counts it carries if queued, with the oldest report's if that
        // has to go: set before measuring, since they are part of its size.
        let full = self.reports.len() >= self.capacity;
        let (mut dropped, mut oversize) = (self.pending_dropped, self.pending_oversize);
        if full && let Some(oldest) = self.reports.front() {
            dropped += 1 + oldest.dropped;
            oversize += oldest.dropped_oversize;
        }
        report.dropped = dropped;
        report.dropped_oversize = oversize;
        let pushed = match size::fit(&mut report, self.limit) {
            Fit::Unchanged => Pushed::Queued,
            Fit::Trimmed { from, to } => Pushed::Trimmed { from, to },
            Fit::TooLarge { size } => {
                // Not queued, and nothing evicted for it; its number
                // reaches the host with the next report queued.
                self.pending_dropped += 1;
                self.pending_oversize += 1;
                self.total_dropped += 1;
                self.total_oversize += 1;
                return Pushed::DroppedOversize {
                    size,
                    limit: self.limit,
                };
            }
        };
        if full && self.reports.pop_front().is_some() {
            self.total_dropped += 1;
        }
        self.pending_dropped = 0;
        self.pending_oversize = 0;
        self.reports.push_back(report);
        pushed
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

    /// Reports dropped since the agent started, for overflow or size (for
    /// logs).
    pub fn total_dropped(&self) -> u64 {
        self.total_dropped
    }

    /// Of [`Self::total_dropped`], those dropped for their size.
    pub fn total_oversize(&self) -> u64 {
        self.total_oversize
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
        (1..=5).for_each(|s| {
            b.push(report(s));
        });
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
        (1..=5).for_each(|s| {
            b.push(report(s));
        });
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

    /// A report no trimming can bring within the limit: its check names
    /// (never cut) alone are over it.
    fn untrimmable(seq: u64) -> HealthReport {
        let checks = (0..2000)
            .map(|i| proto::v1::Check {
                name: format!("{i:0>60}"),
                ..Default::default()
            })
            .collect();
        HealthReport {
            seq,
            checks,
            ..Default::default()
        }
    }

    #[test]
    fn an_oversize_report_is_trimmed_before_it_is_queued() {
        let mut b = ReportBuffer::new(10);
        let mut big = report(1);
        big.checks.push(proto::v1::Check {
            name: "cloud-init".into(),
            message: "e".repeat(5 << 20),
            ..Default::default()
        });
        assert!(
            matches!(b.push(big), Pushed::Trimmed { from, to } if from > 5 << 20 && to <= MAX_REPORT_BYTES)
        );
        let queued: Vec<usize> = b.after(0).map(prost::Message::encoded_len).collect();
        assert!(
            queued.len() == 1 && queued[0] <= MAX_REPORT_BYTES,
            "{queued:?}"
        );
    }

    #[test]
    fn a_report_that_cannot_fit_is_dropped_counted_and_the_next_is_queued() {
        let mut b = ReportBuffer::new(10);
        b.push(report(1));
        assert!(matches!(
            b.push(untrimmable(2)),
            Pushed::DroppedOversize { size, limit } if size > limit && limit == MAX_REPORT_BYTES
        ));
        assert_eq!(b.push(report(3)), Pushed::Queued);
        assert_eq!(seqs(&b, 0), [1, 3]);
        let next = b.after(1).next().cloned().unwrap_or_default();
        assert_eq!((next.dropped, next.dropped_oversize), (1, 1));
        assert_eq!((b.total_dropped(), b.total_oversize()), (1, 1));
        // Nothing of it is left to re-send once the rest is acknowledged.
        b.ack(3);
        assert!(b.is_empty());
    }

    #[test]
    fn dropped_counts_sum_to_what_was_lost_with_oversize_reports_too() {
        let mut b = ReportBuffer::new(4);
        let mut delivered = Vec::new();
        for s in 1..=100u64 {
            b.push(if s % 7 == 0 {
                untrimmable(s)
            } else {
                report(s)
            });
            if s % 25 == 0 {
                delivered.extend(b.after(0).cloned());
                b.ack(s);
            }
        }
        let lost = 100 - delivered.len() as u64;
        assert_eq!(lost, b.total_dropped());
        assert_eq!(delivered.iter().map(|r| r.dropped).sum::<u64>(), lost);
        let oversize = delivered.iter().map(|r| r.dropped_oversize).sum::<u64>();
        assert_eq!(oversize, 100 / 7);
        assert_eq!(oversize, b.total_oversize());
        assert!(delivered.iter().all(|r| r.seq % 7 != 0));
    }
}
