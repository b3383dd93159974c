//! State shared by the daemon's services: configuration, store, PKI,
//! token store, the open report streams, the last enrolment refusal per
//! node, who waits for a node's status to change, and the shutdown signal.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::watch;

use super::config::DaemonConfig;
use crate::store::Store;

/// Everything the gRPC services of one daemon share.
pub struct Shared {
    pub config: DaemonConfig,
    pub store: Store,
    pub pki: Arc<certs::Pki>,
    pub tokens: certs::TokenStore,
    /// Revocation floors and the certificates nodes use.
    pub node_certs: Arc<super::nodecerts::NodeCerts>,
    /// When each node last renewed its certificate.
    pub renewals: super::renewal::Renewals,
    pub connections: Connections,
    pub refusals: Refusals,
    /// Wakes whoever watches a node's status (`Control.WatchNode`).
    pub changes: NodeChanges,
    /// The Host service's address as nodes dial it.
    pub host_endpoint: SocketAddr,
    /// The Enrolment service's address as nodes dial it.
    pub enrol_endpoint: SocketAddr,
    /// Set to `true` once to stop every server and stream.
    pub shutdown: watch::Sender<bool>,
    /// Spans node agents relayed, per trace id (see [`super::traces`]).
    pub traces: ::telemetry::relay::SpanBuffer,
    /// The counters of the metrics endpoint ([`super::metrics`]).
    pub metrics: super::metrics::DaemonMetrics,
}

impl Shared {
    /// Resolves when shutdown has been requested.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Open report streams per node: "connected" in `hostctl status`.
#[derive(Debug, Default)]
pub struct Connections {
    open: Mutex<HashMap<String, usize>>,
}

/// Counts one open stream until dropped.
pub struct ConnectionGuard {
    owner: Arc<Shared>,
    node: String,
}

impl Connections {
    /// Whether `node` has at least one report stream open.
    pub fn is_connected(&self, node: &str) -> bool {
        self.open
            .lock()
            .map(|m| m.get(node).copied().unwrap_or(0) > 0)
            .unwrap_or(false)
    }

    fn change(&self, node: &str, up: bool) {
        if let Ok(mut m) = self.open.lock() {
            let n = m.entry(node.to_owned()).or_insert(0);
            *n = if up { *n + 1 } else { n.saturating_sub(1) };
            if *n == 0 {
                m.remove(node);
            }
        }
    }
}

/// Marks `node` connected for the guard's lifetime.
pub fn connected(shared: &Arc<Shared>, node: &str) -> ConnectionGuard {
    shared.connections.change(node, true);
    shared.changes.notify(node);
    ConnectionGuard {
        owner: shared.clone(),
        node: node.to_owned(),
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.owner.connections.change(&self.node, false);
        self.owner.changes.notify(&self.node);
    }
}

/// One signal per watched node, raised whenever what `Control.Status`
/// shows of it may have changed (a report stored, a stream opened or
/// closed, a refusal, a token, a revocation), so a waiter such as `up`'s
/// enrol step reacts at once instead of polling. A node nobody watches has
/// no entry and costs a map look-up per change; entries whose watchers are
/// all gone are dropped at the next subscription.
#[derive(Debug, Default)]
pub struct NodeChanges {
    signals: Mutex<HashMap<String, watch::Sender<()>>>,
}

impl NodeChanges {
    /// A receiver that sees every change of `node` from now on.
    pub fn subscribe(&self, node: &str) -> watch::Receiver<()> {
        let mut signals = self.signals.lock().unwrap_or_else(PoisonError::into_inner);
        signals.retain(|_, tx| tx.receiver_count() > 0);
        signals
            .entry(node.to_owned())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe()
    }

    /// Wakes the watchers of `node`, if any.
    pub fn notify(&self, node: &str) {
        let signals = self.signals.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = signals.get(node) {
            tx.send_replace(());
        }
    }
}

/// One refused enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub at: SystemTime,
    /// The precise reason (the peer itself was told only that it was
    /// refused, see [`super::enrolment::REFUSED`]).
    pub reason: String,
    pub peer: Option<SocketAddr>,
    /// The refused token's id (not secret): whether it is still the node's
    /// newest token is asked when `status` is (`certs::TokenStore::is_newest_for`).
    pub token_id: Option<String>,
}

/// The last refused enrolment per node, kept in memory only: it matters
/// while someone waits for the node (`up`'s enrol step), and a refusal
/// from before the daemon's restart says nothing about the node now.
/// Only a refusal of a token the host issued for that node is recorded
/// ([`super::enrolment`]): anyone can reach the enrolment port and name a
/// node, and such noise must not end `up`'s wait. Bounded by the topology.
#[derive(Debug, Default)]
pub struct Refusals {
    last: Mutex<HashMap<String, Refusal>>,
}

impl Refusals {
    pub fn record(&self, node: &str, refusal: Refusal) {
        if let Ok(mut m) = self.last.lock() {
            m.insert(node.to_owned(), refusal);
        }
    }

    pub fn last(&self, node: &str) -> Option<Refusal> {
        self.last.lock().ok().and_then(|m| m.get(node).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_wakes_the_watchers_of_that_node_only() {
        let changes = NodeChanges::default();
        let mut a = changes.subscribe("a");
        let b = changes.subscribe("b");
        changes.notify("a");
        changes.notify("nobody-watches");
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        a.borrow_and_update();
        assert!(!a.has_changed().unwrap(), "seen once");
    }

    #[test]
    fn signals_without_watchers_are_dropped() {
        let changes = NodeChanges::default();
        drop(changes.subscribe("gone"));
        let _kept = changes.subscribe("kept");
        let signals = changes.signals.lock().unwrap();
        assert!(!signals.contains_key("gone"));
        assert!(signals.contains_key("kept"));
    }
}
