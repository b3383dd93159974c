//! The daemon's file-descriptor limit. macOS starts processes with a soft
//! limit of 256 descriptors (Linux: 1024) while the hard limit is far
//! higher; the daemon raises its soft limit at start, where allowed, and
//! fits its connection budgets ([`super::listener`]) to what it got.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// macOS refuses a soft `RLIMIT_NOFILE` above `OPEN_MAX` even when the hard
/// limit is "unlimited"; nothing here needs more than this anyway.
const WANTED: u64 = 10_240;

/// Raises the soft descriptor limit towards [`WANTED`] (never above the
/// hard limit, never lowering it) and returns the soft limit in force.
pub fn raise() -> usize {
    let limit = getrlimit(Resource::Nofile);
    // `None` is "unlimited".
    let current = limit.current.unwrap_or(u64::MAX);
    let target = WANTED.min(limit.maximum.unwrap_or(u64::MAX));
    if target > current {
        let raised = Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return usize::try_from(target).unwrap_or(usize::MAX),
            Err(e) => tracing::warn!(
                soft = current,
                hard = ?limit.maximum,
                "cannot raise the descriptor limit: {e}"
            ),
        }
    }
    usize::try_from(current).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_soft_limit_is_raised_up_to_the_hard_one() {
        let before = getrlimit(Resource::Nofile);
        let hard = before.maximum.unwrap_or(u64::MAX);
        // macOS's default, as the daemon finds it there.
        let low = 256.min(hard);
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(low),
                maximum: before.maximum,
            },
        )
        .unwrap();
        let got = raise() as u64;
        assert_eq!(Some(got), getrlimit(Resource::Nofile).current);
        assert_eq!(got, WANTED.min(hard).max(low));
        // Raising again changes nothing and never lowers.
        assert_eq!(raise() as u64, got);
    }
}
