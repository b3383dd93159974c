//! The supervisor plays systemd's part for a local node: it runs the node
//! agent inside the node's network namespace and restarts it whenever it
//! exits (`Restart=always` with a small capped back-off; not after exit
//! status 3, "needs a new enrolment token", as the systemd unit's
//! `RestartPreventExitStatus=3`), so killing the
//! agent is a real fault that the agent must recover from by itself.
//!
//! It runs as the hidden `hostctl local-supervise` command, detached in its
//! own session (its pid is the process group of the agent too), writes one
//! line per event to stderr (the provider points that at
//! `<root>/var/log/hostctl/supervisor.log`) and stops on SIGTERM, taking the
//! agent with it.

use crate::exec::{Cmd, ExecError};
use crate::provider::process;
use rustix::process::Signal;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{SignalKind, signal};

/// The argument that marks a supervisor in `/proc/<pid>/cmdline`.
pub const SUBCOMMAND: &str = "local-supervise";

/// First restart delay; doubled per quick failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A child that ran this long resets the back-off (it was healthy).
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// How long the agent gets to exit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the supervisor needs; mirrors the hidden command's arguments.
#[derive(Debug, Clone)]
pub struct Supervise {
    pub netns: String,
    /// The `ip` binary (resolved by the provider, which checked it exists).
    pub ip: PathBuf,
    /// Where the supervisor writes its own pid.
    pub pidfile: PathBuf,
    /// Where it writes the current agent's pid (tests kill that one).
    pub agent_pidfile: PathBuf,
    /// The agent's stdout and stderr are appended here.
    pub agent_log: PathBuf,
    /// The agent's program and arguments.
    pub command: Vec<OsString>,
}

/// A supervisor that could not start at all (restarts never fail it).
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no command to supervise")]
    NoCommand,
    #[error("cannot write {}: {source}", path.display())]
    Pidfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot handle signals: {0}")]
    Signals(#[source] std::io::Error),
}

/// Why one start of the agent failed (logged; the next start is retried).
#[derive(Debug, thiserror::Error)]
enum AgentStartError {
    #[error("cannot open the agent's log {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Exec(#[from] ExecError),
}

/// Runs until SIGTERM or SIGINT. Start failures and exits of the agent are
/// logged and retried, never returned.
pub async fn run(args: Supervise) -> Result<(), SupervisorError> {
    if args.command.is_empty() {
        return Err(SupervisorError::NoCommand);
    }
    // Leave the launching terminal's session, so its Ctrl-C or hang-up does
    // not reach the node. Failing means we already lead a session: fine.
    let _ = rustix::process::setsid();
    write_pid(&args.pidfile, std::process::id())?;
    let mut term = signal(SignalKind::terminate()).map_err(SupervisorError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(SupervisorError::Signals)?;
    log(&format!(
        "supervising {:?} in netns {}",
        args.command, args.netns
    ));

    let mut backoff = FIRST_BACKOFF;
    let mut starts: u64 = 0;
    loop {
        starts += 1;
        let started = Instant::now();
        match spawn_agent(&args) {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                log(&format!("started node agent, pid {pid} (start {starts})"));
                if let Err(e) = write_pid(&args.agent_pidfile, pid) {
                    log(&e.to_string());
                }
                tokio::select! {
                    status = child.wait() => {
                        let needs_token = status.as_ref().ok().and_then(std::process::ExitStatus::code)
                            == Some(i32::from(proto::contract::EXIT_NEEDS_NEW_TOKEN));
                        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                        log(&format!("node agent pid {pid} exited: {status}"));
                        if needs_token {
                            // As the systemd unit's RestartPreventExitStatus:
                            // the same configuration would fail the same way.
                            log("the node agent needs a new enrolment token; not restarting it");
                            tokio::select! {
                                _ = term.recv() => return finish(&args),
                                _ = int.recv() => return finish(&args),
                            }
                        }
                    }
                    _ = term.recv() => return stop(&args, child, pid as i32).await,
                    _ = int.recv() => return stop(&args, child, pid as i32).await,
                }
            }
            Err(e) => log(&format!("cannot start node agent: {e}")),
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        log(&format!("restarting in {} ms", backoff.as_millis()));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = term.recv() => return finish(&args),
            _ = int.recv() => return finish(&args),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// `ip netns exec` enters the namespace and then execs the agent, so the
/// child's pid is the agent's own.
fn spawn_agent(args: &Supervise) -> Result<tokio::process::Child, AgentStartError> {
    let log_error = |source| AgentStartError::Log {
        path: args.agent_log.clone(),
        source,
    };
    if let Some(dir) = args.agent_log.parent() {
        std::fs::create_dir_all(dir).map_err(log_error)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.agent_log)
        .map_err(log_error)?;
    let err = out.try_clone().map_err(log_error)?;
    Ok(Cmd::new(&args.ip)
        .args(["netns", "exec", &args.netns])
        .args(&args.command)
        .spawner()
        .stdout(out)
        .stderr(err)
        .spawn()?)
}

async fn stop(
    args: &Supervise,
    mut child: tokio::process::Child,
    pid: i32,
) -> Result<(), SupervisorError> {
    log(&format!("stopping node agent pid {pid}"));
    process::signal(pid, Signal::TERM);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        log(&format!("node agent pid {pid} ignored SIGTERM; killing it"));
        let _ = child.kill().await;
    }
    finish(args)
}

fn finish(args: &Supervise) -> Result<(), SupervisorError> {
    let _ = std::fs::remove_file(&args.agent_pidfile);
    let _ = std::fs::remove_file(&args.pidfile);
    log("stopped");
    Ok(())
}

/// Replaces the pid file atomically, so a reader never sees it empty.
fn write_pid(path: &Path, pid: u32) -> Result<(), SupervisorError> {
    crate::fsutil::write_atomic(path, format!("{pid}\n").as_bytes(), 0o600).map_err(|e| {
        SupervisorError::Pidfile {
            path: e.path,
            source: e.source,
        }
    })
}

/// Reads a pid file written by [`write_pid`]; `None` when absent or bad.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn log(message: &str) {
    eprintln!("{} {message}", utc_now());
}

/// `YYYY-MM-DDTHH:MM:SSZ` without a date-time dependency.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    match i64::try_from(secs).map(jiff::Timestamp::from_second) {
        Ok(Ok(ts)) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        _ => format!("@{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_matches_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_798_761_599), "2026-12-31T23:59:59Z");
    }
}
