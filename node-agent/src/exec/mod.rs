//! The one door through which the node agent runs programs and makes its
//! one download, modelled on omicron's `illumos-utils::execute`: one
//! output type, one error type naming the command, one trait.
//!
//! - [`Runner`]: what callers depend on — a command to completion
//!   ([`Runner::run`]), with its lines as they are printed
//!   ([`Runner::run_streaming`], kubeadm), a read-only question about the
//!   machine ([`Runner::query`], and [`Runner::query_blocking`] for the
//!   health checks, which run on the blocking pool beside blocking probes
//!   and file reads), and the repository key ([`Runner::fetch`]).
//! - [`SystemRunner`] ([`system`]): the real thing, for VMs. argv only —
//!   never a shell string — with stdin closed; long-running children
//!   (`journalctl -f`) start through [`system::spawn`].
//! - [`RecordingRunner`] ([`record`]): a STAND-IN for machines that are not
//!   VMs (the local provider, CI, tests). It runs and downloads nothing and
//!   writes what it was asked to a JSONL file, so a local node never
//!   installs packages or reloads sysctls on the developer's machine.
//!
//! Nothing else in the agent starts a process.

pub mod download;
pub mod record;
pub mod system;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::node_config::CommandRunnerKind;
use tokio::sync::mpsc;

pub use record::{RECORD_PATH, Recorded, RecordingRunner, STAND_IN_KEY};
pub use system::SystemRunner;

/// How much of a failed command's output [`ExecError::Exit`] keeps: the
/// end, where programs print why they stopped.
const FAILED_TAIL_CHARS: usize = 2000;

/// What a finished command printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit status; -1 when killed by a signal.
    pub status: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl CommandOutput {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// The output of a command that must succeed: a non-zero exit of
    /// `argv` becomes [`ExecError::Exit`] with the tail of what it printed
    /// (stderr first, where the reason usually is).
    pub fn check(self, argv: &[String]) -> Result<CommandOutput, ExecError> {
        if self.success() {
            return Ok(self);
        }
        let text = format!("{}{}", self.stderr, self.stdout);
        let skip = text.chars().count().saturating_sub(FAILED_TAIL_CHARS);
        let tail: String = text.chars().skip(skip).collect();
        Err(ExecError::Exit {
            command: argv.join(" "),
            status: self.status,
            tail: tail.trim().to_owned(),
        })
    }
}

/// Why a command (or the download) did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A caller passed no program at all (refused rather than panicking).
    #[error("empty command")]
    Empty,
    /// The program could not be started: not installed, not executable,
    /// out of processes.
    #[error("cannot run {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// It started, but reading its output or waiting for it failed.
    #[error("lost track of {command}: {source}")]
    Wait {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// It ran and exited unsuccessfully; only from [`CommandOutput::check`],
    /// for callers to whom that is an error.
    #[error("{command} failed ({}): {tail}", describe(*status))]
    Exit {
        command: String,
        status: i32,
        /// The last characters of stderr followed by stdout.
        tail: String,
    },
    /// The recording stand-in could not write or read its record.
    #[error("{what} {}: {source}", path.display())]
    Record {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The HTTPS download failed.
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
}

impl ExecError {
    fn spawn(argv: &[String]) -> impl FnOnce(std::io::Error) -> Self {
        let command = argv.join(" ");
        move |source| ExecError::Spawn { command, source }
    }

    fn wait(argv: &[String]) -> impl FnOnce(std::io::Error) -> Self {
        let command = argv.join(" ");
        move |source| ExecError::Wait { command, source }
    }

    fn record(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| ExecError::Record { what, path, source }
    }
}

/// "exit status: N", as `std::process::ExitStatus` says it, or the signal.
fn describe(status: i32) -> String {
    if status == -1 {
        "killed by a signal".to_owned()
    } else {
        format!("exit status: {status}")
    }
}

/// Runs commands and the download on behalf of the agent's operations.
#[async_trait::async_trait]
pub trait Runner: Send + Sync {
    /// Runs `argv` to completion; `Err` only when it could not be run (a
    /// non-zero exit is an answer: see [`CommandOutput::check`]).
    async fn run(&self, argv: &[String]) -> Result<CommandOutput, ExecError>;

    /// Runs a read-only query (e.g. `dpkg-query`). `None` means this runner
    /// cannot observe the machine, so the caller relies on its own record.
    async fn query(&self, argv: &[String]) -> Result<Option<CommandOutput>, ExecError>;

    /// [`Runner::query`] for callers on the blocking pool (the health
    /// checks), which must not wait on the runtime.
    fn query_blocking(&self, argv: &[String]) -> Result<Option<CommandOutput>, ExecError>;

    /// Downloads `url` (HTTPS) and returns the body.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, ExecError>;

    /// Runs `argv` like [`Runner::run`], also handing every output line
    /// (stdout and stderr) to `lines` as it is printed, so a long command
    /// (kubeadm) can report progress while it runs. The default sends the
    /// lines once the command has finished (the recording stand-in prints
    /// nothing anyway).
    async fn run_streaming(
        &self,
        argv: &[String],
        lines: &mpsc::Sender<String>,
    ) -> Result<CommandOutput, ExecError> {
        let out = self.run(argv).await?;
        for line in out.stdout.lines().chain(out.stderr.lines()) {
            let _ = lines.send(line.to_owned()).await;
        }
        Ok(out)
    }
}

/// The runner `commandRunner` selects for a node whose root is `root`.
pub fn for_config(kind: CommandRunnerKind, root: &Path) -> Arc<dyn Runner> {
    match kind {
        CommandRunnerKind::Real => Arc::new(SystemRunner),
        CommandRunnerKind::Record => Arc::new(RecordingRunner::new(crate::config::rooted(
            root,
            RECORD_PATH,
        ))),
    }
}

/// `args` as the owned argv the runners take.
pub fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_keeps_success_and_names_a_failure() {
        let ok = CommandOutput {
            stdout: "fine".into(),
            ..CommandOutput::default()
        };
        assert_eq!(ok.clone().check(&argv(&["true"])).ok(), Some(ok));
        let failed = CommandOutput {
            status: 2,
            stdout: "out\n".into(),
            stderr: "x".repeat(FAILED_TAIL_CHARS) + "why\n",
        };
        let err = failed.check(&argv(&["ctr", "run"])).err();
        let Some(ExecError::Exit { command, tail, .. }) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(command, "ctr run");
        assert!(tail.ends_with("why\nout") && tail.chars().count() <= FAILED_TAIL_CHARS);
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.starts_with("ctr run failed (exit status: 2): "),
            "{text}"
        );
    }
}
