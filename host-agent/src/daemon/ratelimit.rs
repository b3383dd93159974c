//! Token buckets for enrolment attempts: one per peer address and one for
//! all peers together (issue 13, item 11).
//!
//! The Enrolment port is reachable without any credential, and every
//! attempt costs a token-store read and log lines. The buckets bound that
//! work whatever an unauthenticated peer sends: a peer gets
//! [`DEFAULT_ENROL_LIMITS`]`.per_peer` (a burst, then a steady trickle),
//! and all peers together `.total`, so rotating addresses does not help
//! either. A refused attempt is answered `RESOURCE_EXHAUSTED`, which node
//! agents treat as transient (they retry with backoff), and is not logged
//! one line per attempt: the first refusal of a run is, then how many
//! followed once the peer is allowed again.
//!
//! IPv6 peers are grouped by their /64 (one host usually owns a whole
//! /64); IPv4-mapped addresses count as IPv4. At most `max_peers` buckets
//! are tracked: when full, buckets that have refilled completely (idle
//! peers) are forgotten, and if none has, a new peer is refused until one
//! has — memory stays bounded under an address-rotation flood.
//!
//! Time is passed in ([`Instant`]) so the arithmetic is tested without
//! sleeping.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

/// One bucket's shape: `burst` attempts at once, refilled at
/// `refill_per_second` (0 never refills: for tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    pub burst: u32,
    pub refill_per_second: f64,
}

/// The enrolment limits of one daemon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnrolLimits {
    pub per_peer: BucketSpec,
    pub total: BucketSpec,
    /// Peer buckets kept at most.
    pub max_peers: usize,
}

/// A node enrols once (its agent retries a transient failure with backoff
/// from 1 s), so 10 at once and one every 5 s per address is far above any
/// honest need — also for providers whose nodes all reach the host from one
/// NAT address (QEMU user networking), six nodes at once included. All
/// peers together: 60 at once, 5 per second.
pub const DEFAULT_ENROL_LIMITS: EnrolLimits = EnrolLimits {
    per_peer: BucketSpec {
        burst: 10,
        refill_per_second: 0.2,
    },
    total: BucketSpec {
        burst: 60,
        refill_per_second: 5.0,
    },
    max_peers: 4096,
};

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This peer's bucket is empty.
    Peer,
    /// The bucket of all peers is empty.
    Total,
    /// `max_peers` buckets are tracked and none is idle.
    TooManyPeers,
}

/// The limiter's answer for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; `limited_before` attempts of this peer were refused since
    /// it was last allowed (for one summary log line).
    Allowed { limited_before: u64 },
    /// Refused; `first` is true for the first refusal of a run (log it).
    Limited { scope: Scope, first: bool },
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Refusals since the last allowed attempt.
    limited: u64,
}

impl Bucket {
    fn full(spec: BucketSpec, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(spec.burst),
            last: now,
            limited: 0,
        }
    }

    fn refill(&mut self, spec: BucketSpec, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * spec.refill_per_second).min(f64::from(spec.burst));
        self.last = now;
    }

    fn has_token(&self) -> bool {
        self.tokens >= 1.0
    }

    fn is_full(&self, spec: BucketSpec) -> bool {
        self.tokens >= f64::from(spec.burst)
    }
}

/// The key a peer is counted under.
fn key_of(peer: Option<IpAddr>) -> Option<IpAddr> {
    peer.map(peer_key)
}

/// The address a peer is counted under by every per-peer limit: an IPv4
/// address as it is (IPv4-mapped IPv6 too), an IPv6 address by its /64,
/// since one machine usually holds a whole /64.
pub(crate) fn peer_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
        v4 => v4,
    }
}

struct Inner {
    total: Bucket,
    peers: HashMap<Option<IpAddr>, Bucket>,
}

/// The enrolment limiter of one daemon.
pub struct EnrolLimiter {
    limits: EnrolLimits,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for EnrolLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolLimiter")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl EnrolLimiter {
    pub fn new(limits: EnrolLimits, now: Instant) -> Self {
        EnrolLimiter {
            limits,
            inner: Mutex::new(Inner {
                total: Bucket::full(limits.total, now),
                peers: HashMap::new(),
            }),
        }
    }

    /// Decides one attempt from `peer` at `now`; an allowed attempt takes a
    /// token from both the peer's bucket and the total.
    pub fn check(&self, peer: Option<IpAddr>, now: Instant) -> Decision {
        let limits = self.limits;
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Inner { total, peers } = &mut *inner;
        total.refill(limits.total, now);
        let key = key_of(peer);
        if !peers.contains_key(&key) && peers.len() >= limits.max_peers {
            peers.retain(|_, b| {
                b.refill(limits.per_peer, now);
                !b.is_full(limits.per_peer)
            });
            if peers.len() >= limits.max_peers {
                total.limited += 1;
                return Decision::Limited {
                    scope: Scope::TooManyPeers,
                    first: total.limited == 1,
                };
            }
        }
        let bucket = peers
            .entry(key)
            .or_insert_with(|| Bucket::full(limits.per_peer, now));
        bucket.refill(limits.per_peer, now);
        if !bucket.has_token() {
            bucket.limited += 1;
            return Decision::Limited {
                scope: Scope::Peer,
                first: bucket.limited == 1,
            };
        }
        if !total.has_token() {
            total.limited += 1;
            return Decision::Limited {
                scope: Scope::Total,
                first: total.limited == 1,
            };
        }
        bucket.tokens -= 1.0;
        total.tokens -= 1.0;
        total.limited = 0;
        Decision::Allowed {
            limited_before: std::mem::take(&mut bucket.limited),
        }
    }

    /// Peer buckets currently tracked.
    pub fn tracked_peers(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .peers
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(peer: u32, total: u32, max_peers: usize) -> EnrolLimits {
        EnrolLimits {
            per_peer: BucketSpec {
                burst: peer,
                refill_per_second: 1.0,
            },
            total: BucketSpec {
                burst: total,
                refill_per_second: 10.0,
            },
            max_peers,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    fn allowed(d: Decision) -> bool {
        matches!(d, Decision::Allowed { .. })
    }

    #[test]
    fn a_peer_gets_its_burst_then_one_per_refill_period() {
        let t0 = Instant::now();
        let l = EnrolLimiter::new(limits(3, 100, 10), t0);
        for _ in 0..3 {
            assert!(allowed(l.check(ip("10.0.0.1"), t0)));
        }
        assert_eq!(
            l.check(ip("10.0.0.1"), t0),
            Decision::Limited {
                scope: Scope::Peer,
                first: true
            }
        );
        assert_eq!(
            l.check(ip("10.0.0.1"), t0),
            Decision::Limited {
                scope: Scope::Peer,
                first: false
            }
        );
        // Another peer is not affected.
        assert!(allowed(l.check(ip("10.0.0.2"), t0)));
        // One second refills one token; the summary counts the refusals.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            l.check(ip("10.0.0.1"), t1),
            Decision::Allowed { limited_before: 2 }
        );
        assert!(!allowed(l.check(ip("10.0.0.1"), t1)));
    }

    #[test]
    fn all_peers_together_are_bounded_by_the_total() {
        let t0 = Instant::now();
        let l = EnrolLimiter::new(limits(5, 4, 100), t0);
        for i in 0..4 {
            assert!(allowed(l.check(ip(&format!("10.0.1.{i}")), t0)));
        }
        assert_eq!(
            l.check(ip("10.0.1.200"), t0),
            Decision::Limited {
                scope: Scope::Total,
                first: true
            }
        );
        // 10 per second: 100 ms gives one more.
        assert!(allowed(
            l.check(ip("10.0.1.201"), t0 + Duration::from_millis(100))
        ));
    }

    #[test]
    fn tracked_peers_are_bounded_and_idle_ones_are_forgotten() {
        let t0 = Instant::now();
        let l = EnrolLimiter::new(limits(2, 1000, 3), t0);
        for i in 0..3 {
            assert!(allowed(l.check(ip(&format!("10.0.2.{i}")), t0)));
        }
        assert_eq!(
            l.check(ip("10.0.2.9"), t0),
            Decision::Limited {
                scope: Scope::TooManyPeers,
                first: true
            }
        );
        assert_eq!(l.tracked_peers(), 3);
        // Once their buckets are full again, the old peers make room.
        let later = t0 + Duration::from_secs(5);
        assert!(allowed(l.check(ip("10.0.2.9"), later)));
        assert!(l.tracked_peers() <= 3);
    }

    #[test]
    fn ipv6_peers_share_their_64_and_mapped_ipv4_is_ipv4() {
        let t0 = Instant::now();
        let l = EnrolLimiter::new(limits(2, 100, 10), t0);
        assert!(allowed(l.check(ip("2001:db8:1:2::1"), t0)));
        assert!(allowed(l.check(ip("2001:db8:1:2::ffff"), t0)));
        assert!(!allowed(l.check(ip("2001:db8:1:2:abcd::1"), t0)));
        assert!(allowed(l.check(ip("2001:db8:1:3::1"), t0)));
        assert!(allowed(l.check(ip("10.9.9.9"), t0)));
        assert!(allowed(l.check(ip("::ffff:10.9.9.9"), t0)));
        assert!(!allowed(l.check(ip("10.9.9.9"), t0)));
    }

    #[test]
    fn a_zero_refill_never_refills() {
        let t0 = Instant::now();
        let mut spec = limits(1, 10, 10);
        spec.per_peer.refill_per_second = 0.0;
        let l = EnrolLimiter::new(spec, t0);
        assert!(allowed(l.check(ip("10.0.3.1"), t0)));
        assert!(!allowed(
            l.check(ip("10.0.3.1"), t0 + Duration::from_secs(3600))
        ));
    }
}
