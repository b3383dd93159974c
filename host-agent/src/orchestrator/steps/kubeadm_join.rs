//! `kubeadm-join/<worker>`: as soon as its cluster's API answers (after
//! `kubeadm-init/<cluster>`) and the worker is prepared, mint a bootstrap
//! token, create it in the cluster as kubeadm's Secret (valid one hour,
//! through kube-rs), and call the worker's `Kubeadm.Join` with the rendered
//! JoinConfiguration pinning the cluster CA.
//!
//! Resume: a worker the API server lists has joined, so a later `up` does
//! not mint a token or call the node again.

use super::cluster::{admin, admin_now};
use super::targets::NodeRef;
use super::{UpContext, rpc};
use crate::cluster_api::bootstrap::{DEFAULT_TTL, create_bootstrap_token};
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use proto::v1::KubeadmJoinRequest;
use proto::v1::kubeadm_client::KubeadmClient;
use std::sync::Arc;
use std::time::Duration;

/// Bound on one join, the node's own retries included.
const JOIN_TIMEOUT: Duration = Duration::from_secs(900);

pub struct KubeadmJoin {
    ctx: Arc<UpContext>,
    /// The worker; its cluster is the one it joins.
    node: NodeRef,
}

impl KubeadmJoin {
    pub fn new(ctx: Arc<UpContext>, node: NodeRef) -> KubeadmJoin {
        KubeadmJoin { ctx, node }
    }

    fn cluster(&self) -> &str {
        self.node.cluster().as_str()
    }

    async fn join(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let ca_hash = self
            .ctx
            .cluster
            .pki
            .cluster(self.cluster())
            .map_err(StepError::from_error)?
            .ca_cert_hash();
        let (client, _) = admin(&self.ctx, self.cluster()).await?;
        let token = certs::bootstrap_token();
        let secret = create_bootstrap_token(&client, &token, DEFAULT_TTL)
            .await
            .map_err(StepError::from_error)?;
        messages.message(step, &format!("created {secret}"));
        let config_yaml = crate::cluster_config::kubeadm::join_config(
            &self.ctx.resolved,
            self.node.name().as_str(),
            &token,
            &ca_hash,
        )
        .map_err(StepError::from_error)?;
        let channel = rpc::dial(&self.ctx, &self.node).await?;
        let stream = KubeadmClient::new(channel)
            .join(KubeadmJoinRequest { config_yaml })
            .await
            .map_err(|s| rpc::refused("Kubeadm.Join", &s))?
            .into_inner();
        rpc::follow("kubeadm join", stream, step, messages).await?;
        Ok(())
    }
}

#[async_trait]
impl StepJob for KubeadmJoin {
    /// The API server lists the node.
    async fn satisfied(&self) -> Result<bool, StepError> {
        let Ok((client, _)) = admin_now(&self.ctx, self.cluster()).await else {
            return Ok(false);
        };
        let name = self.node.name().as_str();
        Ok(crate::cluster_api::ready::node_states(&client)
            .await
            .is_ok_and(|states| states.iter().any(|s| s.name == name)))
    }

    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        rpc::within(JOIN_TIMEOUT, "kubeadm join", self.join(step, messages)).await
    }

    fn interruptible(&self) -> bool {
        false
    }
}
