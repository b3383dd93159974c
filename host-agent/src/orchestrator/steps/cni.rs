//! `cni/<cluster>`: the Gateway API CRDs (server-side apply, before Cilium
//! so its chart creates the `cilium` GatewayClass), then Cilium through
//! the Helm CLI with values rendered from the topology and the shared
//! Cluster Mesh CA (`cluster_api::install`). Both are idempotent (apply,
//! `helm upgrade --install`), so the step simply runs on every `up`.

use super::UpContext;
use super::cluster::admin;
use super::targets::ClusterRef;
use crate::cluster_api::install::{CILIUM_TIMEOUT, install_cilium, install_gateway_api_crds};
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use std::sync::Arc;

pub struct Cni {
    ctx: Arc<UpContext>,
    cluster: ClusterRef,
}

impl Cni {
    pub fn new(ctx: Arc<UpContext>, cluster: ClusterRef) -> Cni {
        Cni { ctx, cluster }
    }
}

#[async_trait]
impl StepJob for Cni {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let settings = &self.ctx.cluster;
        let (client, kubeconfig) = admin(&self.ctx, self.cluster.name().as_str()).await?;
        messages.message(step, "Gateway API CRDs");
        let applied = install_gateway_api_crds(&client, settings.manifests.gateway_api.as_ref())
            .await
            .map_err(StepError::from_error)?;
        messages.message(
            step,
            &format!("{} Gateway API object(s) applied; Cilium", applied.len()),
        );
        install_cilium(
            settings.helm.as_ref(),
            &settings.charts,
            &settings.pki,
            &self.ctx.resolved,
            self.cluster.name().as_str(),
            &kubeconfig,
            CILIUM_TIMEOUT,
        )
        .await
        .map_err(StepError::from_error)?;
        Ok(())
    }
}
