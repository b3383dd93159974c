//! A [`Runner`] for tests: it runs nothing, records every command it is
//! given, and answers from a responder the test supplies, so code that
//! drives `ip`, `multipass` or `helm` can be tested for the exact argv it
//! would run, and for how it handles each kind of answer, without root and
//! without the tool installed.

use super::{Cmd, CommandOutput, ExecError, Runner};
use async_trait::async_trait;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

type Responder = dyn Fn(&Cmd) -> Result<CommandOutput, ExecError> + Send + Sync;

/// Records commands and answers them with `responder`.
pub struct RecordingRunner {
    calls: Mutex<Vec<Cmd>>,
    responder: Box<Responder>,
}

impl RecordingRunner {
    /// Answers every command with success and no output.
    pub fn succeeding() -> RecordingRunner {
        RecordingRunner::answering(|_| Ok(CommandOutput::exited(0)))
    }

    /// Answers each command with what `responder` returns for it.
    pub fn answering(
        responder: impl Fn(&Cmd) -> Result<CommandOutput, ExecError> + Send + Sync + 'static,
    ) -> RecordingRunner {
        RecordingRunner {
            calls: Mutex::new(Vec::new()),
            responder: Box::new(responder),
        }
    }

    /// Every command run so far, in order.
    pub fn calls(&self) -> Vec<Cmd> {
        self.lock().clone()
    }

    /// Every command's arguments (lossy text), in order: what most
    /// assertions compare.
    pub fn argvs(&self) -> Vec<Vec<String>> {
        self.lock().iter().map(Cmd::args_lossy).collect()
    }

    /// A test that panicked while holding the lock must not hide the
    /// commands from the next assertion.
    fn lock(&self) -> MutexGuard<'_, Vec<Cmd>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for RecordingRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingRunner")
            .field("calls", &*self.lock())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Runner for RecordingRunner {
    async fn output(&self, cmd: &Cmd) -> Result<CommandOutput, ExecError> {
        self.lock().push(cmd.clone());
        (self.responder)(cmd)
    }
}
