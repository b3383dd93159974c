//! One suite at a time. The end-to-end suites were separate test binaries,
//! which cargo runs one after another; now they are modules of one binary,
//! whose tests the harness runs two at a time in any order. Suites share
//! what separate binaries never had to share at once — bridges, address
//! ranges, the network lock of the emulator, a VM's worth of CPU under TCG
//! — so a test holds its suite while it runs: tests of the same suite still
//! run side by side (as they always did), a test of another suite waits.
//!
//! The suite is the first segment of the test's name (`qemu_vm::…`), which
//! the harness gives the thread it runs the test on; the hold ends when
//! that thread ends, after the test (passed or panicked).

use std::cell::RefCell;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Which suite runs, and how many of its tests.
struct Gate {
    active: Option<String>,
    running: usize,
}

static GATE: Mutex<Gate> = Mutex::new(Gate {
    active: None,
    running: 0,
});
static FREED: Condvar = Condvar::new();

thread_local! {
    /// The suite this thread's test holds, released when the thread ends.
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

fn gate() -> MutexGuard<'static, Gate> {
    GATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One running test's share of its suite.
struct Held(String);

impl Drop for Held {
    fn drop(&mut self) {
        let mut g = gate();
        g.running = g.running.saturating_sub(1);
        if g.running == 0 {
            g.active = None;
        }
        FREED.notify_all();
    }
}

/// The suite of the test running on this thread: the first segment of the
/// thread's name, when it is a test path.
fn current_suite() -> Option<String> {
    let thread = std::thread::current();
    let (suite, _) = thread.name()?.split_once("::")?;
    Some(suite.to_owned())
}

/// Waits until no other suite's test runs, then holds this test's suite
/// until the test's thread ends. Calling it again from the same test does
/// nothing; threads a test spawns itself (no test name) are not held.
pub fn enter() {
    let Some(suite) = current_suite() else {
        return;
    };
    let holds_it = HELD.with(|held| held.borrow().as_ref().is_some_and(|h| h.0 == suite));
    if holds_it {
        return;
    }
    // The harness runs a test on the main thread when it runs one at a
    // time; a thread that moves on to another suite lets go of the first.
    HELD.with(|held| held.borrow_mut().take());
    let mut g = gate();
    while g.active.as_ref().is_some_and(|active| *active != suite) {
        g = FREED
            .wait(g)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    g.active = Some(suite.clone());
    g.running += 1;
    drop(g);
    HELD.with(|held| *held.borrow_mut() = Some(Held(suite)));
}

#[cfg(test)]
mod tests {
    use super::enter;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(120);

    /// A thread named as the harness names a test's thread.
    fn test_thread(name: &str, body: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(body)
            .expect("spawn");
    }

    #[test]
    fn a_suite_runs_side_by_side_and_another_waits_for_all_of_it() {
        let finished = Arc::new(AtomicUsize::new(0));
        let (entered_tx, entered) = mpsc::channel::<&str>();
        let mut release = Vec::new();
        for name in ["alpha::one", "alpha::two"] {
            let (go, wait) = mpsc::channel::<()>();
            release.push(go);
            let (tx, finished) = (entered_tx.clone(), finished.clone());
            test_thread(name, move || {
                enter();
                tx.send("alpha").expect("report");
                let _ = wait.recv_timeout(LONG);
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Both alpha tests hold the gate at once.
        for _ in 0..2 {
            assert_eq!(entered.recv_timeout(LONG), Ok("alpha"));
        }
        let (seen_tx, seen) = mpsc::channel::<usize>();
        let counted = finished.clone();
        test_thread("beta::one", move || {
            enter();
            seen_tx
                .send(counted.load(Ordering::SeqCst))
                .expect("report");
        });
        // beta waits while alpha runs (a broken gate lets it in now) ...
        assert_eq!(
            seen.recv_timeout(Duration::from_secs(2)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "a test of another suite entered while alpha ran"
        );
        for go in release {
            go.send(()).expect("release");
        }
        // ... and enters once both alpha tests have ended.
        assert_eq!(seen.recv_timeout(LONG), Ok(2));
    }
}
