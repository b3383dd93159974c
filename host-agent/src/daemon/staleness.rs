//! When is a node "stale"? When no report has arrived for
//! [`STALE_AFTER_INTERVALS`] of the node's own reporting intervals, judged
//! by the host's clock at receipt (a node's clock may be wrong; a
//! back-filled report carries an old `taken_at` but proves the node is up).

use std::time::{Duration, SystemTime};

use crate::agent_plane::{DEFAULT_REPORT_INTERVAL, STALE_AFTER_INTERVALS};

/// The interval a report declares, or the default when it declares none.
pub fn interval_of(interval_seconds: u32) -> Duration {
    if interval_seconds == 0 {
        DEFAULT_REPORT_INTERVAL
    } else {
        Duration::from_secs(u64::from(interval_seconds))
    }
}

/// True when `now` is more than three intervals after `last_received`.
/// A clock that went backwards (received in the future) is not stale.
pub fn is_stale(last_received: SystemTime, interval_seconds: u32, now: SystemTime) -> bool {
    let limit = interval_of(interval_seconds) * STALE_AFTER_INTERVALS;
    now.duration_since(last_received)
        .map(|age| age > limit)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_only_after_three_intervals() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(!is_stale(t0, 2, t0 + Duration::from_secs(6)));
        assert!(is_stale(t0, 2, t0 + Duration::from_millis(6_001)));
        assert!(!is_stale(t0, 0, t0 + Duration::from_secs(30)));
        assert!(is_stale(t0, 0, t0 + Duration::from_secs(31)));
        assert!(!is_stale(t0, 1, t0 - Duration::from_secs(60)));
    }
}
