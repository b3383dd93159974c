//! What every step that calls a node agent shares: dialling the node at
//! its topology address, the wording of a refused call and of a timeout,
//! and following a `ProgressEvent` stream to its final event while the
//! phases feed the step's progress line. The node's long operations
//! (prerequisites, kubeadm init/join) all answer this way.

use super::UpContext;
use super::node_client::NodeChannel;
use super::targets::NodeRef;
use crate::orchestrator::{StepError, StepId, StepMessages};
use proto::v1::ProgressEvent;
use proto::v1::progress_event::Outcome;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

/// A channel to `node`'s agent.
pub async fn dial(ctx: &UpContext, node: &NodeRef) -> Result<NodeChannel, StepError> {
    ctx.nodes
        .dial(IpAddr::V4(node.address()))
        .await
        .map_err(StepError::from_error)
}

/// A refused call, phrased for the user.
pub fn status_text(s: &tonic::Status) -> String {
    if s.code() == tonic::Code::Unimplemented {
        "the node agent does not implement it (rebuild and relaunch node-agent)".to_owned()
    } else {
        format!("{:?}: {}", s.code(), s.message())
    }
}

/// The node refused `call` (`InstallPrerequisites`, `Kubeadm.Init`).
pub fn refused(call: &str, s: &tonic::Status) -> StepError {
    StepError::new(format!("the node refused {call}: {}", status_text(s)))
}

/// `work`, failed when it takes longer than `limit` (`what` names it in
/// the error: "kubeadm join did not finish within 900 s").
pub async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, StepError>>,
) -> Result<T, StepError> {
    tokio::time::timeout(limit, work).await.map_err(|_| {
        StepError::new(format!(
            "{what} did not finish within {} s",
            limit.as_secs()
        ))
    })?
}

/// How a followed operation ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Done,
    /// The node found nothing to do (`OperationDone.already_done`).
    AlreadyDone,
}

/// The node's supporting output (e.g. kubeadm's output tail and the kubelet
/// journal's tail) under the one-line error, indented so the summary still
/// reads as one entry per failed step.
fn indented(detail: &str) -> String {
    detail
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("\n    {l}"))
        .collect()
}

/// Reads `stream` to its final event. Every event's phase and message go
/// to the progress line; an error event becomes `<phase>: <message>`
/// (with the phase before it when that differs), so the summary names the
/// phase the node was in (e.g. `kubeadm/[wait-control-plane]`), followed
/// by the error's detail lines.
pub async fn follow(
    what: &str,
    mut stream: tonic::Streaming<ProgressEvent>,
    step: &StepId,
    messages: &dyn StepMessages,
) -> Result<Finished, StepError> {
    let mut last_phase = String::new();
    loop {
        let event = stream
            .message()
            .await
            .map_err(|s| StepError::new(format!("{what} stream broke: {}", status_text(&s))))?
            .ok_or_else(|| {
                StepError::new(format!("the node ended the {what} stream without a result"))
            })?;
        let text = match (event.phase.is_empty(), event.message.is_empty()) {
            (false, false) => format!("{}: {}", event.phase, event.message),
            (false, true) => event.phase.clone(),
            _ => event.message.clone(),
        };
        if !text.is_empty() {
            messages.message(step, &text);
        }
        match event.outcome {
            Some(Outcome::Done(done)) if done.already_done => return Ok(Finished::AlreadyDone),
            Some(Outcome::Done(_)) => return Ok(Finished::Done),
            Some(Outcome::Error(e)) => {
                let at = if last_phase.is_empty() || last_phase == event.phase {
                    event.phase.clone()
                } else {
                    format!("{} (after {last_phase})", event.phase)
                };
                return Err(StepError::new(format!(
                    "{at}: {}{}",
                    e.message,
                    indented(&e.detail)
                )));
            }
            None => {
                if !event.phase.is_empty() {
                    last_phase.clone_from(&event.phase);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn detail_lines_are_indented_under_the_error() {
        assert_eq!(super::indented(""), "");
        assert_eq!(
            super::indented("== kubeadm output ==\nerror execution phase x\n\n"),
            "\n    == kubeadm output ==\n    error execution phase x"
        );
    }
}
