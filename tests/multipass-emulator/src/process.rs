//! Processes the emulator leaves running after a CLI call returns (unit
//! supervisors, dnsmasq, QEMU): how they are recognised and stopped.
//!
//! A pid alone proves nothing (pids are reused), so liveness also checks the
//! command line for markers such as the pid file's path, and skips zombies.

use rustix::process::{Pid, Signal};
use std::path::Path;
use std::time::{Duration, Instant};

/// True when `pid` runs (not a zombie) and every marker is one of its
/// command-line arguments.
pub fn alive_with(pid: i32, markers: &[&str]) -> bool {
    if pid <= 0 {
        return false;
    }
    let dir = Path::new("/proc").join(pid.to_string());
    let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    markers.iter().all(|m| args.iter().any(|a| a == m))
}

/// True when `pid` exists and is not a zombie, whatever it runs.
pub fn alive(pid: i32) -> bool {
    alive_with(pid, &[])
}

/// Sends `signal` to one process; one that is gone already is fine.
pub fn signal(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Sends `signal` to a process group.
pub fn signal_group(pgid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Polls until `gone()` or `limit` passes; true when it went.
pub fn wait_until(limit: Duration, mut gone: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if gone() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, up to `grace` to exit, then SIGKILL: how systemd stops a unit
/// and how the emulator stops anything it started.
pub fn terminate(pid: i32, markers: &[&str], grace: Duration) {
    if !alive_with(pid, markers) {
        return;
    }
    signal(pid, Signal::TERM);
    if !wait_until(grace, || !alive(pid)) {
        signal(pid, Signal::KILL);
        wait_until(Duration::from_secs(5), || !alive(pid));
    }
}

/// Reads a pid file; `None` when absent or unreadable.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether this process runs as root (namespaces and bridges need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_markers_must_match() {
        let pid = std::process::id() as i32;
        assert!(alive(pid));
        assert!(!alive_with(pid, &["--surely-not-an-argument"]));
        assert!(!alive(i32::MAX));
        assert!(!alive(0));
    }
}
