//! What the node looks like to kubeadm operations: already initialised or
//! joined, and healthy? And, when kubeadm fails, what kubelet said.
//!
//! The probes are the health checks the reports already run
//! ([`crate::report::checks`]), so "healthy" means the same thing in a
//! report and in an `already_done` answer; only the endpoints are
//! injectable (tests point them at stand-ins).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::v1::CheckStatus;

use crate::config::rooted;
use crate::exec::SystemRunner;
use crate::logs::{LogQuery, LogSource};
use crate::report::checks::{Checks, Endpoints};

/// kubeadm's admin kubeconfig: present once `init` got past `kubeconfig`.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// kubelet's kubeconfig: present once `init` or `join` configured kubelet.
pub const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
/// Lines of the kubelet journal attached to a failure.
pub const JOURNAL_LINES: u32 = 40;
/// Longest wait for the journal tail (it must never hold up the answer).
const JOURNAL_TIMEOUT: Duration = Duration::from_secs(5);

/// A probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The marker file is absent: the operation has not happened here.
    Absent,
    /// Marker present and the endpoint answers healthy.
    Healthy,
    /// Marker present but the endpoint is not healthy (the message says why).
    Unhealthy(String),
}

/// The node's kubeadm state as seen from its root.
#[derive(Clone)]
pub struct NodeHealth {
    pub root: PathBuf,
    pub endpoints: Endpoints,
    pub logs: Arc<dyn LogSource>,
}

impl NodeHealth {
    /// `admin.conf` and the API server's `/readyz`.
    pub async fn control_plane(&self) -> Probe {
        self.probe(ADMIN_CONF, |c| c.apiserver_readyz()).await
    }

    /// `kubelet.conf` and kubelet's `/healthz`.
    pub async fn kubelet(&self) -> Probe {
        self.probe(KUBELET_CONF, |c| c.kubelet_healthz()).await
    }

    async fn probe(
        &self,
        marker: &str,
        check: impl FnOnce(&Checks) -> proto::v1::Check + Send + 'static,
    ) -> Probe {
        if !rooted(&self.root, marker).exists() {
            return Probe::Absent;
        }
        let checks = Checks::new(&self.root, true, Arc::new(SystemRunner), self.endpoints);
        match tokio::task::spawn_blocking(move || check(&checks)).await {
            Ok(c) if c.status == CheckStatus::Pass as i32 => Probe::Healthy,
            Ok(c) => Probe::Unhealthy(format!("{}: {}", c.name, c.message)),
            Err(e) => Probe::Unhealthy(format!("health probe failed: {e}")),
        }
    }

    /// The last lines of kubelet's journal, or why there are none.
    pub async fn kubelet_journal(&self) -> String {
        let query = LogQuery {
            unit: "kubelet".into(),
            follow: false,
            tail: Some(JOURNAL_LINES),
        };
        let mut rx = match self.logs.open(query) {
            Ok(rx) => rx,
            Err(e) => return format!("(kubelet journal unavailable: {e})"),
        };
        let mut lines = Vec::new();
        let collect = async {
            while let Some(item) = rx.recv().await {
                match item {
                    Ok(line) => lines.push(line.message),
                    Err(e) => {
                        lines.push(format!("(kubelet journal: {e})"));
                        break;
                    }
                }
            }
        };
        if tokio::time::timeout(JOURNAL_TIMEOUT, collect)
            .await
            .is_err()
        {
            lines.push("(kubelet journal: timed out)".into());
        }
        lines.join("\n")
    }
}
