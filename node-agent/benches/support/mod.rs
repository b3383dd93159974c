//! What both benchmarks need around the agent process: it is always
//! killed, and its memory figures come from `/proc/PID/status`.

#[allow(
    dead_code,
    reason = "only the steady-state benchmark runs the node exporter"
)]
pub mod exporter;

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

/// utime, stime, cutime and cstime (clock ticks) from a `stat` file such
/// as `/proc/PID/stat` or `/proc/self/stat`.
pub fn stat_ticks(stat_file: &str) -> TestResult<[u64; 4]> {
    let stat = std::fs::read_to_string(stat_file)?;
    // Fields after the parenthesised command name; utime is the 14th field
    // overall, i.e. the 12th after it, followed by stime, cutime, cstime.
    let after = stat.rsplit_once(')').ok_or("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let mut out = [0; 4];
    for (i, v) in out.iter_mut().enumerate() {
        *v = fields.get(11 + i).ok_or("short stat")?.parse()?;
    }
    Ok(out)
}

/// utime + stime of a process in clock ticks.
pub fn cpu_ticks(pid: u32) -> TestResult<u64> {
    let [utime, stime, ..] = stat_ticks(&format!("/proc/{pid}/stat"))?;
    Ok(utime + stime)
}

/// `getconf CLK_TCK` (100 on Linux when it cannot be asked).
pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> TestResult<f64> {
    Ok(cpu_ticks(pid)? as f64 / clock_ticks_per_second())
}

/// The agent users get: `cargo build --profile node-dist -p node-agent`
/// (the size-optimised build `make dist` embeds in user-data), built now so
/// the benchmark never measures a stale or a release binary. The binary is
/// `<target>/node-dist/node-agent`, beside the `release` directory this
/// benchmark runs from.
pub fn shipped_agent() -> TestResult<std::path::PathBuf> {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace above node-agent")?;
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args(["build", "--profile", "node-dist", "-p", "node-agent"])
        .status()?;
    if !status.success() {
        return Err(format!("building the node-dist agent: {status}").into());
    }
    // <target>/release/deps/<bench> -> <target>
    let exe = std::env::current_exe()?;
    let target = exe
        .ancestors()
        .nth(3)
        .ok_or("cannot find the target directory above the benchmark")?;
    let bin = target.join("node-dist/node-agent");
    let size = std::fs::metadata(&bin)?.len();
    eprintln!("shipped agent: {} ({size} bytes)", bin.display());
    Ok(bin)
}
