//! What both benchmarks need around the agent process: it is always
//! killed, and its memory figures come from `/proc/PID/status`.

use std::process::Child;

use crate::harness::TestResult;

/// Kills the agent even when a measurement fails half-way.
pub struct Agent(pub Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `/proc/PID/status` figure in KiB, e.g. `VmHWM:` (peak resident).
pub fn status_kib(pid: u32, field: &str) -> TestResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or_else(|| format!("{field} missing from /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("malformed status line")?
        .parse()?)
}
