//! `enrol/<node>`: wait until the daemon shows the node's agent connected
//! over mutual TLS with a fresh report. That handshake is the proof that
//! the machine really runs our agent (a provider's "Running" is not).
//!
//! The wait ends early when the daemon refuses the node's enrolment while
//! the step waits, or has refused the token the node's machine holds now
//! (its newest; then whenever it happened — the agent stops after such a
//! refusal instead of retrying): a refused token never becomes good
//! (tokens are single-use and the node has no other), so waiting out the
//! timeout would only delay the same error by minutes.
//!
//! The step waits on the daemon's `WatchNode` stream, which sends the
//! node's status again whenever it may have changed: the wait ends the
//! moment the node's first report is stored, not at the next tick of a
//! poll. The enrol timeout bounds the whole wait.

use super::UpContext;
use super::targets::NodeRef;
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use proto::v1::{EnrolmentRefusal, NodeStatus};
use std::sync::Arc;
use std::time::SystemTime;

pub struct Enrol {
    ctx: Arc<UpContext>,
    node: NodeRef,
}

impl Enrol {
    pub fn new(ctx: Arc<UpContext>, node: NodeRef) -> Enrol {
        Enrol { ctx, node }
    }

    fn name(&self) -> &str {
        self.node.name().as_str()
    }

    async fn observe(&self) -> Result<Seen, StepError> {
        let status = self
            .ctx
            .control
            .clone()
            .status()
            .await
            .map_err(|e| StepError::context("asking the daemon", e))?;
        Ok(status
            .nodes
            .into_iter()
            .find(|n| n.meta.as_ref().is_some_and(|m| m.node == self.name()))
            .map_or(Seen::Waiting, seen))
    }

    /// Follows the node's status until it reports or is refused.
    async fn wait(&self, since: SystemTime) -> Result<(), StepError> {
        let mut statuses = self
            .ctx
            .control
            .clone()
            .watch_node(self.name())
            .await
            .map_err(|e| StepError::context("watching the node's status in the daemon", e))?;
        loop {
            let status = statuses
                .message()
                .await
                .map_err(|e| StepError::context("watching the node's status in the daemon", e))?;
            let Some(status) = status else {
                return Err(StepError::new(
                    "the daemon ended the node's status stream (it stopped?)",
                ));
            };
            match seen(status) {
                Seen::Reporting => return Ok(()),
                Seen::Refused(r) if r.current_token || refused_since(&r, since) => {
                    let from = if r.peer.is_empty() {
                        String::new()
                    } else {
                        format!(" (request from {})", r.peer)
                    };
                    return Err(self
                        .failure(format!(
                            "the host refused its enrolment{from}: {}. The token in its \
                             user-data is one this host did not issue or has already used; \
                             recreate the machine (`hostctl down`, then `hostctl up`)",
                            r.reason
                        ))
                        .await);
                }
                Seen::Refused(_) | Seen::Waiting => {}
            }
        }
    }

    /// The step's error, with what the machine itself says about its boot.
    async fn failure(&self, what: String) -> StepError {
        let logs = self
            .ctx
            .provider
            .agent_layout(self.name())
            .root
            .join("var/log/hostctl");
        let boot = match self.ctx.provider.boot_report(self.name()).await {
            Some(report) => format!("\n  {report}"),
            None => String::new(),
        };
        StepError::new(format!(
            "{what}; see the agent's logs ({} on the node) and `hostctl status`{boot}",
            logs.display()
        ))
    }
}

/// What the daemon shows of the node.
enum Seen {
    Reporting,
    Refused(EnrolmentRefusal),
    Waiting,
}

fn seen(node: NodeStatus) -> Seen {
    if node.connected && !node.stale && node.last_report.is_some() {
        return Seen::Reporting;
    }
    match node.last_enrolment_refusal {
        Some(r) => Seen::Refused(r),
        None => Seen::Waiting,
    }
}

/// A refusal that happened after `since` (older ones are of an earlier
/// machine or token and say nothing about this one).
fn refused_since(refusal: &EnrolmentRefusal, since: SystemTime) -> bool {
    refusal
        .at
        .as_ref()
        .and_then(proto::system_time)
        .is_some_and(|at| at >= since)
}

#[async_trait]
impl StepJob for Enrol {
    async fn satisfied(&self) -> Result<bool, StepError> {
        Ok(matches!(self.observe().await?, Seen::Reporting))
    }

    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        messages.message(step, "waiting for the agent to enrol and report");
        let since = SystemTime::now();
        match tokio::time::timeout(self.ctx.enrol_timeout, self.wait(since)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let secs = self.ctx.enrol_timeout.as_secs();
                Err(self
                    .failure(format!("did not enrol and report within {secs} s"))
                    .await)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_refusals_after_the_wait_began_count() {
        let now = SystemTime::now();
        let at = |t: SystemTime| EnrolmentRefusal {
            at: Some(proto::timestamp(t)),
            reason: "enrolment refused: unknown enrolment token".into(),
            peer: String::new(),
            current_token: false,
        };
        assert!(refused_since(&at(now), now));
        assert!(refused_since(&at(now + Duration::from_secs(1)), now));
        assert!(!refused_since(&at(now - Duration::from_secs(1)), now));
        let undated = EnrolmentRefusal {
            at: None,
            ..at(now)
        };
        assert!(!refused_since(&undated, now));
    }
}
