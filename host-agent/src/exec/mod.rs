//! The one door through which the host agent runs other programs (`ip`,
//! `multipass`, `helm`, `curl`, `qemu-img`, QEMU itself, the supervisor, its
//! own daemon). Modelled on omicron's `illumos-utils::execute`: one
//! description of a command ([`Cmd`]), one result ([`CommandOutput`]) and
//! one error ([`ExecError`]) that names the program and its arguments and
//! keeps the I/O error it came from, so every failure of every caller reads
//! the same and a caller can still tell "not installed" from "ran and said
//! no" from "hung" by type, not by parsing text.
//!
//! Commands that run to completion go through a [`Runner`]: [`RealRunner`]
//! in production, [`RecordingRunner`] in tests, which records every command
//! and answers from a script instead of touching the host. Children that
//! keep running (QEMU's KVM probe, the local supervisor and its agent, the
//! daemon) are started with [`Spawn`], which applies the same rules (argv
//! only, never a shell; stdin closed unless the caller pipes a request in)
//! and the same error.

mod recording;
mod spawn;

pub use recording::RecordingRunner;
pub use spawn::Spawn;

use async_trait::async_trait;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// At most this many bytes of a failed command's stderr are kept in
/// [`ExecError::Exit`]: enough for the error line every tool prints last,
/// while a chatty tool cannot make an error message (which may be
/// persisted as a step's failure) unbounded.
pub const STDERR_TAIL_BYTES: usize = 4096;
/// At most this many of the last stderr lines are kept, for the same reason.
pub const STDERR_TAIL_LINES: usize = 20;

/// A program and its arguments, with the environment it adds and an
/// optional deadline. Built once and handed to a [`Runner`] (or turned into
/// a [`Spawn`]), so what is run and what an error message names are the
/// same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    deadline: Option<Duration>,
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            deadline: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds `key=value` to the environment the program inherits.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Cmd {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Kills the program when it has not finished within `limit` (and when
    /// the caller stops waiting), for tools that can hang, such as a client
    /// whose daemon is wedged. Without a deadline a command runs to its end.
    pub fn deadline(mut self, limit: Duration) -> Cmd {
        self.deadline = Some(limit);
        self
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    pub fn get_envs(&self) -> &[(OsString, OsString)] {
        &self.envs
    }

    pub fn get_deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The arguments as text (lossy), for assertions on recorded commands.
    pub fn args_lossy(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// Starts this command as a long-running child instead.
    pub fn spawner(self) -> Spawn {
        Spawn::new(self)
    }

    /// The one place a process is built: argv only (never a shell, so no
    /// argument can become shell syntax) and stdin closed.
    fn std_command(&self) -> std::process::Command {
        #[expect(
            clippy::disallowed_methods,
            reason = "the one door for running programs"
        )]
        let mut command = std::process::Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    fn spawn_error(&self, source: std::io::Error) -> ExecError {
        ExecError::Spawn {
            program: self.program.clone(),
            command: self.to_string(),
            source,
        }
    }
}

/// `program arg arg…` as a message shows it.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.program.display())?;
        for arg in &self.args {
            write!(f, " {}", arg.to_string_lossy())?;
        }
        Ok(())
    }
}

/// What a finished command produced, whatever its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// An output with exit code `code` and nothing printed: what a
    /// [`RecordingRunner`] answers with (add text with
    /// [`with_stdout`](Self::with_stdout) / [`with_stderr`](Self::with_stderr)).
    pub fn exited(code: i32) -> CommandOutput {
        use std::os::unix::process::ExitStatusExt as _;
        CommandOutput {
            status: ExitStatus::from_raw((code & 0xff) << 8),
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// An output of a program killed by `signal`.
    pub fn killed(signal: i32) -> CommandOutput {
        use std::os::unix::process::ExitStatusExt as _;
        CommandOutput {
            status: ExitStatus::from_raw(signal & 0x7f),
            ..CommandOutput::exited(0)
        }
    }

    pub fn with_stdout(mut self, text: impl Into<Vec<u8>>) -> CommandOutput {
        self.stdout = text.into();
        self
    }

    pub fn with_stderr(mut self, text: impl Into<Vec<u8>>) -> CommandOutput {
        self.stderr = text.into();
        self
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code; `None` when the program was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// `self` when the command succeeded, else [`ExecError::Exit`].
    pub fn check(self, cmd: &Cmd) -> Result<CommandOutput, ExecError> {
        if self.success() {
            Ok(self)
        } else {
            Err(self.exit_error(cmd))
        }
    }

    /// The error this output is as a failure of `cmd` (for callers that
    /// classify the output themselves and keep the error as the source).
    pub fn exit_error(&self, cmd: &Cmd) -> ExecError {
        ExecError::Exit {
            command: cmd.to_string(),
            status: self.status,
            stderr: tail(&self.stderr_text()),
        }
    }
}

/// Why a command did not run to a successful end.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program could not be started: not installed, not executable,
    /// out of processes.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        program: PathBuf,
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// It started, but reading its output or waiting for it failed.
    #[error("lost track of `{command}`: {source}")]
    Wait {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// It ran and exited unsuccessfully; `stderr` is the end of what it
    /// printed there (at most [`STDERR_TAIL_LINES`] / [`STDERR_TAIL_BYTES`]).
    #[error("`{command}` failed ({status}){}", colon_then(stderr))]
    Exit {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    /// Its deadline ([`Cmd::deadline`]) passed; it was killed.
    #[error("`{command}` did not finish within {}s and was killed", after.as_secs())]
    Timeout {
        program: PathBuf,
        command: String,
        after: Duration,
    },
}

impl ExecError {
    /// True when the program itself is missing or not executable: the
    /// "install it" case, as opposed to a program that ran and failed.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ExecError::Spawn { source, .. } if is_missing_program(source))
    }
}

/// Whether starting a program failed because it is not there (or not
/// executable): `ENOENT` or `EACCES` from `exec`.
pub fn is_missing_program(spawn_error: &std::io::Error) -> bool {
    matches!(
        spawn_error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
    )
}

fn colon_then(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The last [`STDERR_TAIL_LINES`] lines of `text`, trimmed, and at most
/// [`STDERR_TAIL_BYTES`] of them (cut at a character boundary, marked `…`).
pub fn tail(text: &str) -> String {
    let text = text.trim();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
    if kept.len() <= STDERR_TAIL_BYTES {
        return kept;
    }
    let mut start = kept.len() - STDERR_TAIL_BYTES;
    while !kept.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &kept[start..])
}

/// Runs commands to completion. Callers hold an `Arc<dyn Runner>` so tests
/// can substitute a [`RecordingRunner`].
#[async_trait]
pub trait Runner: Send + Sync + fmt::Debug {
    /// Runs `cmd` (stdin closed, stdout and stderr captured) and returns
    /// its output whatever the exit status; errors only when it could not
    /// be run, was lost, or passed its deadline.
    async fn output(&self, cmd: &Cmd) -> Result<CommandOutput, ExecError>;

    /// As [`output`](Self::output), and a non-zero exit is
    /// [`ExecError::Exit`].
    async fn run(&self, cmd: &Cmd) -> Result<CommandOutput, ExecError> {
        self.output(cmd).await?.check(cmd)
    }
}

/// Runs commands on this host.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealRunner;

/// The shared real runner, for callers that are not parameterised.
pub fn real() -> Arc<dyn Runner> {
    Arc::new(RealRunner)
}

#[async_trait]
impl Runner for RealRunner {
    async fn output(&self, cmd: &Cmd) -> Result<CommandOutput, ExecError> {
        tracing::debug!(command = %cmd, "run");
        let mut command = tokio::process::Command::from(cmd.std_command());
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // With a deadline, dropping the wait (timeout or a caller that
            // gave up) must end the program too.
            .kill_on_drop(cmd.deadline.is_some());
        let child = command.spawn().map_err(|e| cmd.spawn_error(e))?;
        let waited = match cmd.deadline {
            None => child.wait_with_output().await,
            Some(limit) => tokio::time::timeout(limit, child.wait_with_output())
                .await
                .map_err(|_| ExecError::Timeout {
                    program: cmd.program.clone(),
                    command: cmd.to_string(),
                    after: limit,
                })?,
        };
        let output = waited.map_err(|source| ExecError::Wait {
            command: cmd.to_string(),
            source,
        })?;
        Ok(CommandOutput {
            status: output.status,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }
}

/// Finds an executable `name` on `$PATH` or, after it, in the sbin and bin
/// directories (`sudo` may drop the sbin ones from `$PATH`, where `ip`
/// lives).
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path_dirs = crate::environment::standard::PATH
        .os()
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests;
