//! Bounded waiting: every wait in the suites has a deadline and says what it
//! was waiting for when it gives up.

use std::time::{Duration, Instant};

/// Calls `probe` every `every` until it returns `Some`, or panics after
/// `limit` with `what` and the last `describe()` of the situation.
pub fn until<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {:.1} s waiting for {what}; last seen:\n{}",
                limit.as_secs_f64(),
                describe()
            );
        }
        std::thread::sleep(every);
    }
}
