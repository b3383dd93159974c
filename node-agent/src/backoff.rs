//! Capped exponential backoff with full jitter.
//!
//! Many nodes lose the host at the same moment (host restart), so retries
//! must spread out: each delay is uniform in `[0, min(cap, base · 2^n))`
//! (AWS's "full jitter"). Pure arithmetic so it can be tested without time.

use std::time::Duration;

/// Retry delays for one connection; reset after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays start below `base` and never exceed `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The agent's default: 500 ms growing to 30 s.
    pub fn standard() -> Self {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }

    /// The ceiling of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay given `unit` in `[0, 1)`; advances the attempt count.
    pub fn next_with(&mut self, unit: f64) -> Duration {
        let delay = self.ceiling().mul_f64(unit.clamp(0.0, 1.0));
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// The next delay with a random jitter.
    pub fn next_delay(&mut self) -> Duration {
        self.next_with(rand::random::<f64>())
    }

    /// Starts again from `base` (after a connection proved healthy).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// `interval` ± `fraction` (e.g. 0.1 for ± 10 %), given `unit` in `[0, 1)`;
/// spreads reports from many nodes so they do not arrive in lockstep.
pub fn jittered(interval: Duration, fraction: f64, unit: f64) -> Duration {
    let spread = (unit.clamp(0.0, 1.0) * 2.0 - 1.0) * fraction;
    interval.mul_f64((1.0 + spread).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let ceilings: Vec<u64> = (0..9)
            .map(|_| {
                let c = b.ceiling().as_millis() as u64;
                b.next_with(0.5);
                c
            })
            .collect();
        assert_eq!(
            ceilings,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn delay_is_jittered_below_ceiling_and_reset_restarts() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(b.next_with(0.0), Duration::ZERO);
        assert_eq!(b.next_with(0.5), Duration::from_millis(500));
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(30));
        }
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let i = Duration::from_secs(10);
        assert_eq!(jittered(i, 0.1, 0.0), Duration::from_secs(9));
        assert_eq!(jittered(i, 0.1, 0.5), Duration::from_secs(10));
        assert!(jittered(i, 0.1, 0.999_999) <= Duration::from_secs(11));
    }
}
