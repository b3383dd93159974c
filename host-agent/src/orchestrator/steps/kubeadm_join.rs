//! `kubeadm-join/<worker>`: as soon as its cluster's API answers (after
//! `kubeadm-init/<cluster>`) and the worker is prepared, mint a bootstrap
//! token, create it in the cluster as kubeadm's Secret (valid one hour,
//! through kube-rs), and call the worker's `Kubeadm.Join` with the rendered
//! JoinConfiguration pinning the cluster CA.
//!
//! Resume: a worker the API server lists has joined, so a later `up` does
//! not mint a token or call the node again.

use super::cluster::{admin, admin_now};
use super::{UpContext, rpc};
use crate::kube::bootstrap::{DEFAULT_TTL, create_bootstrap_token};
use crate::orchestrator::graph::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use proto::v1::KubeadmJoinRequest;
use proto::v1::kubeadm_client::KubeadmClient;
use std::sync::Arc;
use std::time::Duration;

/// Bound on one join, the node's own retries included.
const JOIN_TIMEOUT: Duration = Duration::from_secs(900);

pub struct KubeadmJoin {
    ctx: Arc<UpContext>,
    node: String,
    cluster: String,
}

impl KubeadmJoin {
    pub fn new(ctx: Arc<UpContext>, node: &str, cluster: &str) -> KubeadmJoin {
        KubeadmJoin {
            ctx,
            node: node.to_owned(),
            cluster: cluster.to_owned(),
        }
    }

    async fn join(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let node = &self.node;
        let ca_hash = self
            .ctx
            .cluster
            .pki
            .cluster(&self.cluster)
            .map_err(|e| StepError(format!("cluster {}: {e}", self.cluster)))?
            .ca_cert_hash();
        let (client, _) = admin(&self.ctx, &self.cluster).await?;
        let token = certs::bootstrap_token();
        let secret = create_bootstrap_token(&client, &token, DEFAULT_TTL)
            .await
            .map_err(|e| StepError(format!("{node}: {e}")))?;
        messages.message(step, &format!("created {secret}"));
        let config_yaml =
            crate::k8s::kubeadm::join_config(&self.ctx.resolved, node, &token, &ca_hash)
                .map_err(|e| StepError::from_chain(&e))?;
        let channel = rpc::dial(&self.ctx, node).await?;
        let stream = KubeadmClient::new(channel)
            .join(KubeadmJoinRequest { config_yaml })
            .await
            .map_err(|s| {
                StepError(format!(
                    "{node}: the node refused Kubeadm.Join: {}",
                    rpc::status_text(&s)
                ))
            })?
            .into_inner();
        rpc::follow(node, "kubeadm join", stream, step, messages).await?;
        Ok(())
    }
}

#[async_trait]
impl StepJob for KubeadmJoin {
    /// The API server lists the node.
    async fn satisfied(&self) -> Result<bool, StepError> {
        let Ok((client, _)) = admin_now(&self.ctx, &self.cluster).await else {
            return Ok(false);
        };
        Ok(crate::kube::ready::node_states(&client)
            .await
            .is_ok_and(|states| states.iter().any(|s| s.name == self.node)))
    }

    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        tokio::time::timeout(JOIN_TIMEOUT, self.join(step, messages))
            .await
            .map_err(|_| {
                StepError(format!(
                    "{}: kubeadm join did not finish within {} s",
                    self.node,
                    JOIN_TIMEOUT.as_secs()
                ))
            })?
    }

    fn interruptible(&self) -> bool {
        false
    }
}
