//! Children that keep running after the call that starts them: QEMU's KVM
//! probe (read while it runs, then killed), the local supervisor and the
//! node agent it restarts, and the daemon the CLI starts detached. They do
//! not fit "run to completion" (there is no output to return), so they are
//! not behind [`super::Runner`], but they are described by the same
//! [`Cmd`] and fail with the same [`ExecError`].

use super::{Cmd, ExecError};
use std::process::Stdio;

/// A [`Cmd`] with where its standard streams go. Every stream not set is
/// `/dev/null` (never the caller's terminal: these children outlive or run
/// beside the command that started them).
#[derive(Debug)]
pub struct Spawn {
    cmd: Cmd,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    process_group: Option<i32>,
    kill_on_drop: bool,
}

impl Spawn {
    pub fn new(cmd: Cmd) -> Spawn {
        Spawn {
            cmd,
            stdin: None,
            stdout: None,
            stderr: None,
            process_group: None,
            kill_on_drop: false,
        }
    }

    /// Where stdin comes from: [`Stdio::piped`] for a child that is fed a
    /// request (the Git server's CGI, `git http-backend`, reads the HTTP
    /// body there). Closed when not set.
    pub fn stdin(mut self, from: impl Into<Stdio>) -> Spawn {
        self.stdin = Some(from.into());
        self
    }

    /// Where stdout goes: a log file, or [`Stdio::piped`] to read it.
    pub fn stdout(mut self, to: impl Into<Stdio>) -> Spawn {
        self.stdout = Some(to.into());
        self
    }

    pub fn stderr(mut self, to: impl Into<Stdio>) -> Spawn {
        self.stderr = Some(to.into());
        self
    }

    /// Puts the child in process group `pgid` (0: a new group it leads), so
    /// the terminal's Ctrl-C for the caller does not reach it.
    pub fn process_group(mut self, pgid: i32) -> Spawn {
        self.process_group = Some(pgid);
        self
    }

    /// Kills the child when its handle is dropped (async children only:
    /// a probe must not outlive the check that started it).
    pub fn kill_on_drop(mut self) -> Spawn {
        self.kill_on_drop = true;
        self
    }

    /// The command as it will run, for messages.
    pub fn cmd(&self) -> &Cmd {
        &self.cmd
    }

    /// Starts the child under tokio, for a caller that awaits it.
    pub fn spawn(self) -> Result<tokio::process::Child, ExecError> {
        let kill_on_drop = self.kill_on_drop;
        let (cmd, command) = self.into_std();
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(kill_on_drop);
        command.spawn().map_err(|e| cmd.spawn_error(e))
    }

    /// Starts the child as a plain process, for one that outlives the
    /// caller's runtime (a detached supervisor or daemon, polled with
    /// `try_wait`). `kill_on_drop` does not apply.
    pub fn spawn_std(self) -> Result<std::process::Child, ExecError> {
        let (cmd, mut command) = self.into_std();
        command.spawn().map_err(|e| cmd.spawn_error(e))
    }

    fn into_std(self) -> (Cmd, std::process::Command) {
        use std::os::unix::process::CommandExt as _;
        tracing::debug!(command = %self.cmd, "spawn");
        let mut command = self.cmd.std_command();
        command
            .stdout(self.stdout.unwrap_or_else(Stdio::null))
            .stderr(self.stderr.unwrap_or_else(Stdio::null));
        if let Some(stdin) = self.stdin {
            command.stdin(stdin);
        }
        if let Some(pgid) = self.process_group {
            command.process_group(pgid);
        }
        (self.cmd, command)
    }
}
