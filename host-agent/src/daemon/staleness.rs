//! When is a node "stale"? When no report has arrived for
//! [`STALE_AFTER_INTERVALS`] of the node's own reporting intervals, judged
//! by the host's clock at receipt — never by a report's own `taken_at`: a
//! node's clock may be wrong, a report dated in the future would otherwise
//! freeze the node as stale, and a back-filled report carries an old
//! `taken_at` but proves the node is up.
//!
//! The difference between the two clocks is still worth showing: a node
//! whose clock is off breaks TLS validity checks and makes its logs hard
//! to line up. [`clock_skew`] estimates it from a report; `status` warns
//! beyond [`CLOCK_SKEW_WARN`].

use std::time::{Duration, SystemTime};

use crate::agent_plane::{DEFAULT_REPORT_INTERVAL, STALE_AFTER_INTERVALS};

/// Skew beyond which `status` warns. Reports are sent as soon as taken, so
/// an honest node is within a second or two; 30 s leaves room for a
/// report queued behind a reconnect without hiding a clock that is off.
pub const CLOCK_SKEW_WARN: Duration = Duration::from_secs(30);

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

/// The node's clock minus the host's, in whole seconds, as a report shows
/// it: `taken_at − received_at` (transmission delay makes it slightly
/// negative).
pub fn clock_skew(taken_at: SystemTime, received_at: SystemTime) -> i64 {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    match taken_at.duration_since(received_at) {
        Ok(ahead) => secs(ahead),
        Err(e) => -secs(e.duration()),
    }
}

/// The warning for a skew of `skew` seconds, `None` within
/// [`CLOCK_SKEW_WARN`].
pub fn skew_warning(skew: i64) -> Option<String> {
    if skew.unsigned_abs() <= CLOCK_SKEW_WARN.as_secs() {
        return None;
    }
    let (dir, by) = if skew > 0 {
        ("ahead of", skew.unsigned_abs())
    } else {
        ("behind", skew.unsigned_abs())
    };
    Some(format!(
        "the node's clock is about {by} s {dir} the host's (judged from its latest report); \
         staleness uses the host's clock, but certificates and logs need the node's to be right \
         (check its time synchronisation)"
    ))
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

    #[test]
    fn skew_is_signed_and_warned_beyond_the_threshold() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(clock_skew(t0 + Duration::from_secs(90), t0), 90);
        assert_eq!(clock_skew(t0 - Duration::from_secs(45), t0), -45);
        assert_eq!(clock_skew(t0, t0), 0);
        assert!(skew_warning(30).is_none());
        assert!(skew_warning(-30).is_none());
        assert!(skew_warning(31).is_some_and(|w| w.contains("31 s ahead of")));
        assert!(skew_warning(-3600).is_some_and(|w| w.contains("3600 s behind")));
    }
}
