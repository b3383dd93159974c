//! Running the `multipass` client. Every call goes through [`MultipassCli::run`]
//! so that the rules live in one place: argv only (never a shell, so a node
//! name can never become shell syntax), no stdin, a deadline per call (the
//! client can hang when the daemon is wedged), and the child killed when the
//! deadline passes or the caller gives up.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// What one finished `multipass` call produced. Kept whole because the
/// failure class is decided from the exit code *and* the text together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutput {
    /// `None` when the client was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CallOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Why a call produced no [`CallOutput`] at all.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The program could not be started (missing, not executable, ...).
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Our own deadline passed; the client was killed.
    #[error("{program} did not answer within {}s", after.as_secs())]
    TimedOut { program: String, after: Duration },
}

/// The `multipass` client at a known path. Tests point `program` at the
/// stand-in under `tests/fixtures`; production uses `multipass` from `PATH`.
#[derive(Debug, Clone)]
pub struct MultipassCli {
    pub program: PathBuf,
}

impl MultipassCli {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        MultipassCli {
            program: program.into(),
        }
    }

    /// Runs `multipass <args>` and waits at most `deadline` for it.
    pub async fn run(
        &self,
        args: &[OsString],
        deadline: Duration,
    ) -> Result<CallOutput, CallError> {
        let program = self.program.display().to_string();
        tracing::debug!(%program, ?args, "multipass call");
        let child = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| CallError::Spawn {
                program: program.clone(),
                source,
            })?;
        // Dropping the wait future on timeout drops the child, which kills it.
        match tokio::time::timeout(deadline, child.wait_with_output()).await {
            Ok(Ok(output)) => Ok(CallOutput {
                code: output.status.code(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }),
            Ok(Err(source)) => Err(CallError::Spawn { program, source }),
            Err(_) => Err(CallError::TimedOut {
                program,
                after: deadline,
            }),
        }
    }
}
