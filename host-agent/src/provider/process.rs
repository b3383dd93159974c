//! Process checks and signals for the processes providers start and find
//! again later by pid file (the local provider's supervisors, QEMU). A pid
//! alone is not proof (pids are reused), so liveness also looks at the
//! process's command line and skips zombies.

use rustix::process::{Pid, Signal};
use std::path::Path;
use std::time::Duration;

/// True when `pid` is a running (not zombie) process whose command line
/// contains every one of `markers`.
pub fn alive_with(pid: i32, markers: &[&str]) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    markers.iter().all(|m| args.iter().any(|a| a == m))
}

/// Sends `signal` to one process; a process that is already gone is fine.
pub fn signal(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Sends `signal` to a whole process group (the supervisor is its leader,
/// so this also reaches an agent whose supervisor died).
pub fn signal_group(pgid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Waits until `still_there()` turns false, polling; false when `limit`
/// passed first.
pub async fn wait_until_gone(limit: Duration, mut still_there: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while still_there() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// The effective user id is root: network namespaces need it.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_bogus_marker_is_not() {
        let pid = std::process::id() as i32;
        let exe = std::env::args().next().unwrap_or_default();
        assert!(alive_with(pid, &[&exe]));
        assert!(!alive_with(pid, &["--surely-not-an-argument"]));
        assert!(!alive_with(i32::MAX, &[]));
    }
}
