//! `nodes-ready/<cluster>`: the named, timed "nodes Ready" check
//! (`kube::ready`) over the cluster's nodes in this run, after the CNI and
//! every join. Its timeout error names each node still missing or
//! NotReady and recognises "no CNI yet".

use super::UpContext;
use super::cluster::admin;
use crate::kube::ready::{DEFAULT_POLL, wait_nodes_ready};
use crate::orchestrator::graph::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use std::sync::Arc;

pub struct NodesReady {
    ctx: Arc<UpContext>,
    cluster: String,
    /// The cluster's nodes this run brings up.
    nodes: Vec<String>,
}

impl NodesReady {
    pub fn new(ctx: Arc<UpContext>, cluster: &str, nodes: Vec<String>) -> NodesReady {
        NodesReady {
            ctx,
            cluster: cluster.to_owned(),
            nodes,
        }
    }
}

#[async_trait]
impl StepJob for NodesReady {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let (client, _) = admin(&self.ctx, &self.cluster).await?;
        messages.message(step, &format!("waiting for {} node(s)", self.nodes.len()));
        let report = wait_nodes_ready(
            &client,
            &self.nodes,
            self.ctx.cluster.ready_timeout,
            DEFAULT_POLL,
        )
        .await
        .map_err(|e| StepError(format!("{}: {e}", self.cluster)))?;
        messages.message(step, &report.to_string());
        Ok(())
    }
}
