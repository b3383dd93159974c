//! `nodes-ready/<cluster>`: the named, timed "nodes Ready" check
//! (`cluster_api::ready`) over the cluster's nodes in this run, after the CNI and
//! every join. Its timeout error names each node still missing or
//! NotReady and recognises "no CNI yet".

use super::UpContext;
use super::cluster::admin;
use super::targets::ClusterRef;
use crate::cluster_api::ready::{DEFAULT_POLL, wait_nodes_ready};
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use std::sync::Arc;

pub struct NodesReady {
    ctx: Arc<UpContext>,
    cluster: ClusterRef,
}

impl NodesReady {
    pub fn new(ctx: Arc<UpContext>, cluster: ClusterRef) -> NodesReady {
        NodesReady { ctx, cluster }
    }
}

#[async_trait]
impl StepJob for NodesReady {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        // The cluster's nodes this run brings up.
        let nodes: Vec<String> = self
            .cluster
            .members()
            .iter()
            .map(|n| n.name().to_string())
            .collect();
        let (client, _) = admin(&self.ctx, self.cluster.name().as_str()).await?;
        messages.message(step, &format!("waiting for {} node(s)", nodes.len()));
        let report = wait_nodes_ready(
            &client,
            &nodes,
            self.ctx.cluster.ready_timeout,
            DEFAULT_POLL,
        )
        .await
        .map_err(StepError::from_error)?;
        messages.message(step, &report.to_string());
        Ok(())
    }
}
