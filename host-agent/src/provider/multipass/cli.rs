//! Running the `multipass` client. Every call goes through [`MultipassCli`]
//! so that the rules live in one place: argv only (never a shell, so a node
//! name can never become shell syntax), no stdin, a deadline per call (the
//! client can hang when the daemon is wedged), and the child killed when the
//! deadline passes or the caller gives up — the last three are
//! [`crate::exec`]'s rules for a [`Cmd`] with a deadline.

use crate::exec::{self, Cmd, CommandOutput, ExecError, Runner};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The `multipass` client at a known path. Tests point `program` at the
/// stand-in under `tests/fixtures` (or give a recording runner); production
/// uses `multipass` from `PATH`.
#[derive(Debug, Clone)]
pub struct MultipassCli {
    pub program: PathBuf,
    runner: Arc<dyn Runner>,
}

impl MultipassCli {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self::with_runner(program, exec::real())
    }

    pub fn with_runner(program: impl Into<PathBuf>, runner: Arc<dyn Runner>) -> Self {
        MultipassCli {
            program: program.into(),
            runner,
        }
    }

    /// `multipass <args>`, killed if it has not answered within `deadline`.
    pub fn command(&self, args: &[OsString], deadline: Duration) -> Cmd {
        Cmd::new(&self.program).args(args).deadline(deadline)
    }

    /// Runs `cmd` and returns what it printed whatever its exit status: the
    /// failure class is decided from the exit code *and* the text together
    /// ([`super::errors::classify`]).
    pub async fn run(&self, cmd: &Cmd) -> Result<CommandOutput, ExecError> {
        // Multipass is the one provider a user debugs from a Mac: its calls
        // are logged under their own name (`HOSTCTL_LOG=debug`).
        tracing::debug!(command = %cmd, "multipass call");
        self.runner.output(cmd).await
    }
}
