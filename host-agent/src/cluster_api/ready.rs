//! The "nodes Ready" check: a named, timed wait that says which nodes are
//! missing or NotReady and why, and recognises the normal state between
//! `kubeadm init` and Cilium ("no CNI yet") instead of reporting a bare
//! timeout (the pain point of talos#7967 and k0sctl#1040).

use super::error::KubeError;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use std::fmt;
use std::time::{Duration, Instant};

/// The check's name in progress output and errors.
pub const NODES_READY: &str = "nodes Ready";
/// How often the node list is polled while waiting.
pub const DEFAULT_POLL: Duration = Duration::from_secs(2);

/// One node's Ready condition as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub name: String,
    pub ready: bool,
    /// The Ready condition's reason and message (empty when Ready).
    pub reason: String,
    pub message: String,
}

impl NodeState {
    /// True when the kubelet says the container runtime has no network
    /// plugin: expected until Cilium runs.
    pub fn no_cni(&self) -> bool {
        let text = format!("{} {}", self.reason, self.message);
        text.contains("NetworkPluginNotReady") || text.contains("cni plugin not initialized")
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ready {
            return write!(f, "{} Ready", self.name);
        }
        write!(f, "{} NotReady", self.name)?;
        if self.no_cni() {
            write!(f, " (no CNI yet)")?;
        } else if !self.reason.is_empty() || !self.message.is_empty() {
            write!(f, " ({}: {})", self.reason, self.message)?;
        }
        Ok(())
    }
}

/// The state of the expected nodes at one poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadyReport {
    pub ready: Vec<String>,
    pub not_ready: Vec<NodeState>,
    /// Expected nodes that have not registered.
    pub missing: Vec<String>,
    pub elapsed: Duration,
}

impl ReadyReport {
    /// Compares the API server's nodes with the expected names.
    pub fn from_states(expected: &[String], states: &[NodeState], elapsed: Duration) -> Self {
        let mut report = ReadyReport {
            elapsed,
            ..Default::default()
        };
        for name in expected {
            match states.iter().find(|s| &s.name == name) {
                None => report.missing.push(name.clone()),
                Some(s) if s.ready => report.ready.push(name.clone()),
                Some(s) => report.not_ready.push(s.clone()),
            }
        }
        report
    }

    /// Every expected node is registered and Ready.
    pub fn all_ready(&self) -> bool {
        self.not_ready.is_empty() && self.missing.is_empty()
    }

    /// "x/y" for status tables.
    pub fn ratio(&self) -> String {
        let total = self.ready.len() + self.not_ready.len() + self.missing.len();
        format!("{}/{total}", self.ready.len())
    }
}

impl fmt::Display for ReadyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.not_ready.iter().map(ToString::to_string).collect();
        parts.extend(self.missing.iter().map(|n| format!("{n} not registered")));
        if parts.is_empty() {
            write!(f, "{} Ready", self.ratio())
        } else {
            write!(f, "{} Ready; {}", self.ratio(), parts.join("; "))
        }
    }
}

/// Every node the API server knows, with its Ready condition.
pub async fn node_states(client: &kube::Client) -> Result<Vec<NodeState>, KubeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .map_err(|e| super::apply::classify(e, "list nodes"))?;
    Ok(list.items.iter().map(state_of).collect())
}

fn state_of(node: &Node) -> NodeState {
    let name = node.metadata.name.clone().unwrap_or_default();
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) => NodeState {
            name,
            ready: c.status == "True",
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        },
        None => NodeState {
            name,
            ready: false,
            reason: "NoReadyCondition".to_owned(),
            message: "the kubelet has not posted a Ready condition".to_owned(),
        },
    }
}

/// Polls until every `expected` node is Ready, or fails after `timeout`
/// with [`KubeError::Timeout`] naming each node still missing or NotReady
/// (or the last API error when the server never answered).
pub async fn wait_nodes_ready(
    client: &kube::Client,
    expected: &[String],
    timeout: Duration,
    poll: Duration,
) -> Result<ReadyReport, KubeError> {
    let start = Instant::now();
    loop {
        let detail = match node_states(client).await {
            Ok(states) => {
                let report = ReadyReport::from_states(expected, &states, start.elapsed());
                if report.all_ready() {
                    return Ok(report);
                }
                report.to_string()
            }
            Err(e) => e.to_string(),
        };
        if start.elapsed() + poll > timeout {
            return Err(KubeError::Timeout {
                check: NODES_READY,
                timeout,
                detail,
            });
        }
        tokio::time::sleep(poll).await;
    }
}
