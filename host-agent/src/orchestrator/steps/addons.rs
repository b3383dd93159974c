//! `addons/<cluster>`: MetalLB's manifest, then hostctl's base manifests
//! (PSA namespaces, local-path and the StorageClasses, MetalLB's address
//! pools), all server-side. The pools are validated by MetalLB's webhook,
//! which answers 500 until its pod serves; that one failure is retried
//! until [`WEBHOOK_WAIT`], anything else fails the step at once.

use super::UpContext;
use super::cluster::admin;
use super::targets::ClusterRef;
use crate::cluster_api::KubeError;
use crate::cluster_api::install::{apply_base_manifests, install_metallb};
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the base manifests are retried while the webhook is not up.
pub const WEBHOOK_WAIT: Duration = Duration::from_secs(300);
/// Pause between retries.
const RETRY_PAUSE: Duration = Duration::from_secs(3);

/// The API's answer while an admission webhook's service has no endpoint.
pub fn is_webhook_unavailable(e: &KubeError) -> bool {
    matches!(e, KubeError::Api { status: 500, message, .. } if message.contains("webhook"))
}

pub struct Addons {
    ctx: Arc<UpContext>,
    cluster: ClusterRef,
}

impl Addons {
    pub fn new(ctx: Arc<UpContext>, cluster: ClusterRef) -> Addons {
        Addons { ctx, cluster }
    }
}

#[async_trait]
impl StepJob for Addons {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let (client, _) = admin(&self.ctx, self.cluster.name().as_str()).await?;
        messages.message(step, "MetalLB");
        install_metallb(&client, self.ctx.cluster.manifests.metallb.as_ref())
            .await
            .map_err(StepError::from_error)?;
        let deadline = Instant::now() + WEBHOOK_WAIT;
        loop {
            messages.message(step, "base manifests");
            match apply_base_manifests(&client, &self.ctx.resolved, self.cluster.name().as_str())
                .await
            {
                Ok(applied) => {
                    messages.message(step, &format!("{} object(s) applied", applied.len()));
                    return Ok(());
                }
                Err(e) if is_webhook_unavailable(&e) && Instant::now() < deadline => {
                    messages.message(step, &format!("MetalLB's webhook is not up yet: {e}"));
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(StepError::from_error(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_webhook_500_is_retried() {
        let api = |status, message: &str| KubeError::Api {
            object: "IPAddressPool metallb-system/default".into(),
            status,
            reason: "InternalError".into(),
            message: message.into(),
        };
        assert!(is_webhook_unavailable(&api(
            500,
            "Internal error occurred: failed calling webhook \"ipaddresspoolvalidationwebhook.metallb.io\": connect: connection refused"
        )));
        assert!(!is_webhook_unavailable(&api(
            500,
            "etcdserver: request timed out"
        )));
        assert!(!is_webhook_unavailable(&api(
            422,
            "webhook denied the request"
        )));
    }
}
