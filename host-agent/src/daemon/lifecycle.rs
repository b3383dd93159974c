//! One daemon per home, started on demand.
//!
//! - `$HOSTCTL_HOME/daemon.pid` is held with an exclusive `flock` for the
//!   daemon's whole life ([`PidLock`]). The lock, not the file's content,
//!   says whether a daemon is alive, so a crash (which drops the lock)
//!   never leaves a home that refuses a new daemon. The file is never
//!   removed: removing a locked file would let two daemons lock two
//!   different inodes.
//! - [`ensure_running`] asks the socket first; if nobody answers and no
//!   one holds the lock, it starts `hostctl daemon` detached (own process
//!   group, logging to `$HOSTCTL_HOME/daemon.log`, see [`logfile`]) and
//!   waits until the socket answers. A stale socket file is removed by the
//!   new daemon, which holds the lock by then.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::client::ControlClient;
use super::config::{log_path, pid_path, socket_path};
use super::logfile;
use crate::cli::Context;
use crate::exec::{Cmd, ExecError};

/// How long [`ensure_running`] waits for a new daemon to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Lines of `daemon.log` quoted when the daemon does not come up.
const LOG_TAIL_LINES: usize = 20;

/// Failures to run or reach the daemon.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("a daemon is already running for {home} (pid {pid})")]
    AlreadyRunning { home: PathBuf, pid: String },
    /// A file operation failed: which, on what file, and why (the
    /// workspace's one path-I/O error, [`fsio::Error`]).
    #[error(transparent)]
    Io(#[from] fsio::Error),
    #[error("cannot start the daemon: {0}")]
    Start(#[source] ExecError),
    #[error("the daemon exited ({status}) before answering; last lines of {log}:\n{tail}")]
    Exited {
        status: std::process::ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error("the daemon did not answer on {socket} within {secs} s; last lines of {log}:\n{tail}")]
    NotAnswering {
        socket: PathBuf,
        secs: u64,
        log: PathBuf,
        tail: String,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LifecycleError {
    let at = fsio::Error::at(what, path);
    move |source| LifecycleError::Io(at(source))
}

/// The exclusive lock on `daemon.pid`, held while the daemon runs.
#[derive(Debug)]
pub struct PidLock {
    file: File,
}

/// Creates `home` as 0700 if it does not exist (it holds keys and the
/// control socket).
pub fn ensure_home(home: &Path) -> Result<(), LifecycleError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(io_err("cannot create", home))
}

fn open_pid_file(home: &Path) -> Result<File, LifecycleError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = pid_path(home);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io_err("cannot open", &path))
}

impl PidLock {
    /// Takes the lock and records our pid, or says who holds it.
    pub fn acquire(home: &Path) -> Result<PidLock, LifecycleError> {
        ensure_home(home)?;
        let mut file = open_pid_file(home)?;
        let path = pid_path(home);
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(LifecycleError::AlreadyRunning {
                    home: home.to_owned(),
                    pid: pid.trim().to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("cannot lock", &path)(e)),
        }
        file.set_len(0).map_err(io_err("cannot write", &path))?;
        file.seek(SeekFrom::Start(0))
            .map_err(io_err("cannot write", &path))?;
        writeln!(file, "{}", std::process::id()).map_err(io_err("cannot write", &path))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_err("cannot restrict", &path))?;
        Ok(PidLock { file })
    }

    /// Whether some process holds the lock right now.
    pub fn is_held(home: &Path) -> Result<bool, LifecycleError> {
        if !pid_path(home).exists() {
            return Ok(false);
        }
        let file = open_pid_file(home)?;
        match file.try_lock() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => Err(io_err("cannot lock", &pid_path(home))(e)),
        }
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// Returns a client for the home's daemon, starting the daemon first if
/// nobody answers on the socket. `topology` is passed to a daemon started
/// here (a running daemon keeps the topology it was started with).
pub async fn ensure_running(
    ctx: &Context,
    topology: Option<&Path>,
) -> Result<ControlClient, LifecycleError> {
    let home = ctx.home.root();
    let socket = socket_path(home);
    if let Some(client) = answering(&socket).await {
        return Ok(client);
    }
    let mut child = if PidLock::is_held(home)? {
        None // starting right now (another CLI started it): just wait
    } else {
        Some(spawn(home, topology)?)
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(client) = answering(&socket).await {
            return Ok(client);
        }
        let log = log_path(home);
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            return Err(LifecycleError::Exited {
                status,
                tail: log_tail(&log),
                log,
            });
        }
        if Instant::now() >= deadline {
            return Err(LifecycleError::NotAnswering {
                socket,
                secs: START_TIMEOUT.as_secs(),
                tail: log_tail(&log),
                log,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops the home's daemon if one answers and starts a new one: for `up`
/// when the daemon's view is stale (the host certificate was re-issued, or
/// the node network moved), since a running daemon keeps what it started with.
pub async fn restart(
    ctx: &Context,
    topology: Option<&Path>,
) -> Result<ControlClient, LifecycleError> {
    let home = ctx.home.root();
    if let Some(mut client) = answering(&socket_path(home)).await {
        tracing::info!("restarting the daemon: its addresses or certificate changed");
        let _ = client.shutdown().await;
        // Bounded: a daemon that does not let go of its lock in time is
        // reported by `ensure_running` below as "already running".
        let deadline = Instant::now() + START_TIMEOUT;
        while PidLock::is_held(home)? && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    ensure_running(ctx, topology).await
}

/// A client if a daemon answers `Status` on `socket`.
async fn answering(socket: &Path) -> Option<ControlClient> {
    let mut client = ControlClient::connect(socket).await.ok()?;
    client.status().await.ok()?;
    Some(client)
}

fn spawn(home: &Path, topology: Option<&Path>) -> Result<Child, LifecycleError> {
    ensure_home(home)?;
    let exe = match crate::environment::DAEMON_EXE.os() {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe().map_err(io_err("cannot find", Path::new("hostctl")))?,
    };
    let log = log_path(home);
    let out = logfile::open_for_start(&log, logfile::MAX_LOG_BYTES)
        .map_err(io_err("cannot open", &log))?;
    let err = out.try_clone().map_err(io_err("cannot open", &log))?;
    // The daemon logs through its capped, rotated writer; stdout and
    // stderr stay the file for what is not a log line (a start-up error).
    let mut cmd = Cmd::new(&exe)
        .arg("--home")
        .arg(home)
        .arg("daemon")
        .env(crate::environment::DAEMON_LOG.name, &log);
    if let Some(t) = topology {
        cmd = cmd.arg("--topology").arg(t);
    }
    tracing::info!(
        "starting the daemon: {} (log {})",
        exe.display(),
        log.display()
    );
    // Its own process group: the terminal's Ctrl-C for this command must
    // not reach a daemon that outlives it.
    cmd.spawner()
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn_std()
        .map_err(LifecycleError::Start)
}

/// The last lines of the daemon's log, for an error message.
pub fn log_tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read the log: {e})"),
    }
}
