//! What a drill works on: the home's topology, its provider, the daemon's
//! view of the agents, and (for clusters `up` built) each cluster's API
//! server — the same sources `status` and `verify` read.

use crate::cluster_api::client::admin_client;
use crate::cluster_api::health::STATUS_TIMEOUT;
use crate::daemon::ControlClient;
use crate::orchestrator::UpState;
use crate::provider::Provider;
use certs::Pki;
use proto::v1::NodeStatus;
use std::path::Path;
use topology::{ClusterRole, Resolved};

/// Everything a drill needs, opened by the command.
pub struct DrillEnv<'a> {
    pub home: &'a Path,
    pub resolved: &'a Resolved,
    pub provider: &'a dyn Provider,
    pub daemon: ControlClient,
    pub pki: Option<&'a Pki>,
    pub state: UpState,
}

impl DrillEnv<'_> {
    /// The nodes of clusters with (or without) role mgmt, by name.
    pub fn nodes_where(&self, mgmt: bool) -> Vec<String> {
        let topology = self.resolved.topology();
        topology
            .nodes()
            .iter()
            .filter(|n| {
                topology
                    .clusters()
                    .iter()
                    .any(|c| c.name == n.cluster && (c.role == ClusterRole::Mgmt) == mgmt)
            })
            .map(|n| n.name.clone())
            .collect()
    }

    /// The daemon's view of every node.
    pub async fn nodes(&mut self) -> Result<Vec<NodeStatus>, super::DrillError> {
        Ok(self.daemon.status().await?.nodes)
    }

    /// The clusters `up` built (only the app clusters with `app_only`),
    /// each with an admin client or why there is none.
    pub async fn clusters(&self, app_only: bool) -> Vec<(String, Result<kube::Client, String>)> {
        built_clusters(self.resolved, &self.state, self.pki, app_only).await
    }
}

/// See [`DrillEnv::clusters`]; for drills that need no agents.
pub async fn built_clusters(
    resolved: &Resolved,
    state: &UpState,
    pki: Option<&Pki>,
    app_only: bool,
) -> Vec<(String, Result<kube::Client, String>)> {
    let mut out = Vec::new();
    for c in resolved.topology().clusters() {
        if (app_only && c.role == ClusterRole::Mgmt)
            || !state.step_done(&format!("kubeconfig/{}", c.name))
        {
            continue;
        }
        let client = match pki {
            Some(pki) => admin_client(pki, resolved, &c.name, STATUS_TIMEOUT)
                .await
                .map(|(client, _)| client)
                .map_err(|e| e.to_string()),
            None => Err("no PKI in this home".to_owned()),
        };
        out.push((c.name.clone(), client));
    }
    out
}

/// The node's status by name.
pub fn node<'a>(nodes: &'a [NodeStatus], name: &str) -> Option<&'a NodeStatus> {
    nodes
        .iter()
        .find(|n| n.meta.as_ref().is_some_and(|m| m.node == name))
}
