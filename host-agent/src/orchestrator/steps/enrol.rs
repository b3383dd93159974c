//! `enrol/<node>`: wait until the daemon shows the node's agent connected
//! over mutual TLS with a fresh report. That handshake is the proof that
//! the machine really runs our agent (a provider's "Running" is not).

use super::UpContext;
use crate::orchestrator::graph::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(300);

pub struct Enrol {
    ctx: Arc<UpContext>,
    node: String,
}

impl Enrol {
    pub fn new(ctx: Arc<UpContext>, node: &str) -> Enrol {
        Enrol {
            ctx,
            node: node.to_owned(),
        }
    }

    async fn connected(&self) -> Result<bool, StepError> {
        let status = self
            .ctx
            .control
            .clone()
            .status()
            .await
            .map_err(|e| StepError(format!("{}: asking the daemon: {e}", self.node)))?;
        Ok(status.nodes.iter().any(|n| {
            n.meta.as_ref().is_some_and(|m| m.node == self.node)
                && n.connected
                && !n.stale
                && n.last_report.is_some()
        }))
    }
}

#[async_trait]
impl StepJob for Enrol {
    async fn satisfied(&self) -> Result<bool, StepError> {
        self.connected().await
    }

    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        messages.message(step, "waiting for the agent to enrol and report");
        let deadline = Instant::now() + self.ctx.enrol_timeout;
        loop {
            if self.connected().await? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs = self
                    .ctx
                    .provider
                    .agent_layout(&self.node)
                    .root
                    .join("var/log/hostctl");
                let boot = match self.ctx.provider.boot_report(&self.node).await {
                    Some(report) => format!("\n  {report}"),
                    None => String::new(),
                };
                return Err(StepError(format!(
                    "{}: did not enrol and report within {} s; see the agent's logs ({} on the node) and `hostctl status`{boot}",
                    self.node,
                    self.ctx.enrol_timeout.as_secs(),
                    logs.display()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
