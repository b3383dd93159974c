//! kubeadm behind a narrow interface: `init`, `join` and `reset`, nothing
//! else of its CLI, so the rest of the agent (and the tests' stand-in)
//! depend on three calls rather than on flags.
//!
//! [`Cli`] runs the real binary through the agent's one command runner
//! ([`crate::exec::Runner`]): argv only, never a shell. Under the
//! recording runner (local provider) kubeadm is recorded, not run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::KubeadmError;
use super::output::{FailureClass, Tail, classify};
use crate::exec::Runner;

/// How a kubeadm run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0.
    Succeeded,
    /// A non-zero exit, classified from the output.
    Failed {
        status: i32,
        class: FailureClass,
        /// The output's last lines (see [`super::output::TAIL_LINES`]).
        tail: String,
    },
}

/// The three kubeadm operations the agent performs. Each hands every output
/// line to `lines` as it is printed.
#[async_trait::async_trait]
pub trait Kubeadm: Send + Sync {
    /// `kubeadm init --config <config>`, with
    /// `--ignore-preflight-errors=<checks>` when `waived` names any (the
    /// flag kubeadm allows beside `--config`).
    async fn init(
        &self,
        config: &Path,
        waived: &[String],
        lines: &mpsc::Sender<String>,
    ) -> Result<Outcome, KubeadmError>;
    /// `kubeadm join --config <config>`.
    async fn join(
        &self,
        config: &Path,
        lines: &mpsc::Sender<String>,
    ) -> Result<Outcome, KubeadmError>;
    /// `kubeadm reset -f`.
    async fn reset(&self, lines: &mpsc::Sender<String>) -> Result<Outcome, KubeadmError>;
}

/// The kubeadm command line.
pub struct Cli {
    binary: PathBuf,
    runner: Arc<dyn Runner>,
}

impl Cli {
    /// kubeadm at `binary` (a name looked up on PATH, or a path), run
    /// through `runner`.
    pub fn new(binary: PathBuf, runner: Arc<dyn Runner>) -> Self {
        Cli { binary, runner }
    }

    async fn run(
        &self,
        args: &[&str],
        lines: &mpsc::Sender<String>,
    ) -> Result<Outcome, KubeadmError> {
        let mut argv = vec![self.binary.to_string_lossy().into_owned()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        // Keep the tail while forwarding, so nothing depends on the
        // caller reading every line.
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let forward = async {
            let mut tail = Tail::default();
            while let Some(line) = rx.recv().await {
                tail.push(&line);
                let _ = lines.send(line).await;
            }
            tail
        };
        let run = async {
            let r = self.runner.run_streaming(&argv, &tx).await;
            drop(tx);
            r
        };
        let (result, tail) = tokio::join!(run, forward);
        let out = result?;
        if out.success() {
            return Ok(Outcome::Succeeded);
        }
        Ok(Outcome::Failed {
            status: out.status,
            class: classify(out.status, &tail),
            tail: tail.text(),
        })
    }
}

#[async_trait::async_trait]
impl Kubeadm for Cli {
    async fn init(
        &self,
        config: &Path,
        waived: &[String],
        lines: &mpsc::Sender<String>,
    ) -> Result<Outcome, KubeadmError> {
        let config = config.to_string_lossy();
        let waiver = format!("--ignore-preflight-errors={}", waived.join(","));
        let mut args = vec!["init", "--config", &config];
        if !waived.is_empty() {
            args.push(&waiver);
        }
        self.run(&args, lines).await
    }

    async fn join(
        &self,
        config: &Path,
        lines: &mpsc::Sender<String>,
    ) -> Result<Outcome, KubeadmError> {
        let config = config.to_string_lossy();
        self.run(&["join", "--config", &config], lines).await
    }

    async fn reset(&self, lines: &mpsc::Sender<String>) -> Result<Outcome, KubeadmError> {
        self.run(&["reset", "-f"], lines).await
    }
}
