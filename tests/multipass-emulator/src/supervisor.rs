//! systemd's part for a fast-mode machine: each started unit runs under a
//! supervisor, the hidden `__supervise` command, which runs the unit's
//! program inside the machine's namespace and restarts it whenever it exits
//! (`Restart=always` with a small capped back-off), so a node agent that
//! dies is brought back as on a VM.
//!
//! The supervisor leads its own session and process group (the program is
//! in that group too) and writes its events to `<machine>/supervisor.log`;
//! the program's stdout and stderr go to `<machine>/agent.log`. It handles
//! no signals: stopping a unit kills the supervisor first (so nothing
//! restarts), then sends SIGTERM to the group, and SIGKILL to what is left
//! after a grace period, as systemd stops a service.

use crate::fsutil;
use crate::process;
use anyhow::Context as _;
use rustix::process::{Pid, Signal};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const SUBCOMMAND: &str = "__supervise";

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A run this long counts as healthy and resets the back-off.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// systemd's default is 90 s; a test machine gets less.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One supervised unit, as the hidden command's arguments describe it.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The machine directory (logs and pid files).
    pub dir: PathBuf,
    pub netns: String,
    pub unit: String,
    /// The working directory: the machine's root.
    pub cwd: PathBuf,
    /// The whole environment of the program (systemd gives services a
    /// clean one, not the caller's).
    pub env: Vec<(String, String)>,
    pub argv: Vec<OsString>,
}

fn units_dir(dir: &Path) -> PathBuf {
    dir.join("units")
}

fn supervisor_pidfile(dir: &Path, unit: &str) -> PathBuf {
    units_dir(dir).join(format!("{unit}.supervisor.pid"))
}

fn main_pidfile(dir: &Path, unit: &str) -> PathBuf {
    units_dir(dir).join(format!("{unit}.main.pid"))
}

fn dir_marker(dir: &Path) -> String {
    dir.to_string_lossy().into_owned()
}

/// The supervisor's pid when it runs.
pub fn supervisor_pid(dir: &Path, unit: &str) -> Option<i32> {
    let pid = process::read_pid(&supervisor_pidfile(dir, unit))?;
    process::alive_with(pid, &[SUBCOMMAND, &dir_marker(dir), unit]).then_some(pid)
}

/// Starts a detached supervisor for `spec` (stdio on files, never the
/// CLI's pipes: hostctl reads the CLI's output to its end, which would
/// otherwise wait for the machine to stop).
pub fn start(spec: &Spec) -> anyhow::Result<()> {
    std::fs::create_dir_all(units_dir(&spec.dir))?;
    let log_path = spec.dir.join("supervisor.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("locating the emulator binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg(SUBCOMMAND)
        .arg("--dir")
        .arg(&spec.dir)
        .args(["--netns", &spec.netns, "--unit", &spec.unit])
        .arg("--cwd")
        .arg(&spec.cwd);
    for (k, v) in &spec.env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    let mut child = cmd
        .arg("--")
        .args(&spec.argv)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the unit supervisor")?;
    let up = process::wait_until(Duration::from_secs(5), || {
        supervisor_pid(&spec.dir, &spec.unit).is_some()
    });
    if let Ok(Some(status)) = child.try_wait() {
        anyhow::bail!(
            "the supervisor of {} exited at once ({status}); see {}",
            spec.unit,
            log_path.display()
        );
    }
    if !up {
        anyhow::bail!(
            "the supervisor of {} did not come up; see {}",
            spec.unit,
            log_path.display()
        );
    }
    Ok(())
}

/// Stops one unit: supervisor first, then the program's process group.
pub fn stop(dir: &Path, unit: &str) {
    let recorded = process::read_pid(&supervisor_pidfile(dir, unit));
    let main = process::read_pid(&main_pidfile(dir, unit)).filter(|p| process::alive(*p));
    let live_supervisor = supervisor_pid(dir, unit);
    if let Some(pid) = live_supervisor {
        process::signal(pid, Signal::KILL);
    }
    // The group is the supervisor's pid; signal it only when that is
    // proven to be ours (the supervisor ran, or the program is in it).
    let group = recorded.filter(|g| {
        live_supervisor == Some(*g)
            || main.is_some_and(|m| {
                Pid::from_raw(m)
                    .and_then(|p| rustix::process::getpgid(Some(p)).ok())
                    .is_some_and(|pg| pg.as_raw_nonzero().get() == *g)
            })
    });
    if let Some(g) = group {
        process::signal_group(g, Signal::TERM);
        process::wait_until(STOP_GRACE, || main.is_none_or(|m| !process::alive(m)));
        process::signal_group(g, Signal::KILL);
    }
    if let Some(m) = main {
        process::wait_until(Duration::from_secs(5), || !process::alive(m));
    }
    let _ = std::fs::remove_file(supervisor_pidfile(dir, unit));
    let _ = std::fs::remove_file(main_pidfile(dir, unit));
}

/// Stops every unit of the machine in `dir`.
pub fn stop_all(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(units_dir(dir)) else {
        return;
    };
    let units: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".supervisor.pid").map(str::to_owned)
        })
        .collect();
    for unit in units {
        stop(dir, &unit);
    }
}

/// The `__supervise` command: runs until killed.
pub fn run(spec: Spec) -> anyhow::Result<()> {
    // Leave the CLI's session, so nothing aimed at it reaches the machine.
    let _ = rustix::process::setsid();
    let pidfile = supervisor_pidfile(&spec.dir, &spec.unit);
    fsutil::write_atomic(
        &pidfile,
        format!("{}\n", std::process::id()).as_bytes(),
        0o644,
    )?;
    let log = |m: &str| {
        fsutil::append_line(
            &spec.dir.join("supervisor.log"),
            &format!("{}: {m}", spec.unit),
        )
    };
    log(&format!(
        "supervising {:?} in netns {}",
        spec.argv, spec.netns
    ));
    let mut backoff = FIRST_BACKOFF;
    let mut starts = 0u64;
    loop {
        starts += 1;
        let started = Instant::now();
        match spawn(&spec) {
            Ok(mut child) => {
                let pid = child.id();
                log(&format!("started pid {pid} (start {starts})"));
                let _ = fsutil::write_atomic(
                    &main_pidfile(&spec.dir, &spec.unit),
                    format!("{pid}\n").as_bytes(),
                    0o644,
                );
                let status = child
                    .wait()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string());
                log(&format!("pid {pid} exited: {status}"));
            }
            Err(e) => log(&format!("cannot start: {e:#}")),
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        log(&format!("restarting in {} ms", backoff.as_millis()));
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// `ip netns exec` enters the namespace and execs the program, so the
/// child's pid is the program's own.
fn spawn(spec: &Spec) -> anyhow::Result<std::process::Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.dir.join("agent.log"))?;
    let err = out.try_clone()?;
    Command::new(crate::ip::program())
        .args(["netns", "exec", &spec.netns])
        .args(&spec.argv)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("ip netns exec")
}
