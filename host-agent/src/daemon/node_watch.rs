//! `Control.WatchNode`: one node's status now and after every change, so a
//! waiter (`up`'s enrol step) learns the moment the node reports instead of
//! polling the whole status.
//!
//! The daemon raises a node's signal ([`super::state::NodeChanges`]) when a
//! report of it is committed, a report stream of it opens or closes, its
//! enrolment is refused, a token is issued for it or it is revoked. On each
//! signal the node's status is computed again and sent if it differs from
//! the last one sent. Staleness alone is a matter of time, not of an event,
//! so the status is also looked at every [`RECHECK`] (a fresh report always
//! comes with a signal; only "has gone stale" needs the clock).

use std::sync::Arc;
use std::time::Duration;

use proto::v1::NodeStatus;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::control::ControlService;
use super::state::Shared;

/// How often an unchanged node's status is recomputed for staleness.
pub const RECHECK: Duration = Duration::from_secs(5);

/// What `WatchNode` answers with.
pub type NodeStatusStream = ReceiverStream<Result<NodeStatus, Status>>;

/// Streams `node`'s status until the caller goes away or the daemon stops.
pub fn watch(service: ControlService, shared: Arc<Shared>, node: String) -> NodeStatusStream {
    let (tx, rx) = mpsc::channel(1);
    let mut changes = shared.changes.subscribe(&node);
    tokio::spawn(async move {
        let mut last: Option<NodeStatus> = None;
        loop {
            // Marked seen before looking, so a change while looking is
            // looked at again.
            changes.borrow_and_update();
            let status = match service.status_of(&node).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if last.as_ref() != Some(&status) {
                if tx.send(Ok(status.clone())).await.is_err() {
                    return;
                }
                last = Some(status);
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
                () = shared.shutdown_requested() => return,
                () = tokio::time::sleep(RECHECK) => {}
            }
        }
    });
    ReceiverStream::new(rx)
}
