//! `kubeconfig/<cluster>`: mint the cluster's admin kubeconfig from the
//! host's CA (`kube::kubeconfig`), keep it as
//! `$HOSTCTL_HOME/kubeconfigs/<cluster>.conf` (0600), and merge its
//! cluster, user and context into the user's kubeconfig
//! (`kube::merge`, as `hostctl kubeconfig --merge` does: other entries and
//! the current context are left alone). Re-minting on every `up` is cheap
//! and replaces a certificate nearing expiry.

use super::UpContext;
use crate::kube::kubeconfig::admin_kubeconfig;
use crate::kube::merge::merge_into_file;
use crate::orchestrator::graph::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;

/// The stored kubeconfig holds a client key.
const MODE: u32 = 0o600;

pub struct Kubeconfig {
    ctx: Arc<UpContext>,
    cluster: String,
}

impl Kubeconfig {
    pub fn new(ctx: Arc<UpContext>, cluster: &str) -> Kubeconfig {
        Kubeconfig {
            ctx,
            cluster: cluster.to_owned(),
        }
    }

    /// `$HOSTCTL_HOME/kubeconfigs/<cluster>.conf`.
    pub fn stored_path(&self) -> PathBuf {
        self.ctx
            .cluster
            .kubeconfig_dir
            .join(format!("{}.conf", self.cluster))
    }
}

#[async_trait]
impl StepJob for Kubeconfig {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let cluster = &self.cluster;
        let yaml = admin_kubeconfig(&self.ctx.cluster.pki, &self.ctx.resolved, cluster)
            .map_err(|e| StepError::from_chain(&e))?;
        let stored = self.stored_path();
        crate::fsutil::write_atomic(&stored, yaml.as_bytes(), MODE)
            .map_err(|e| StepError::from_chain(&e))?;
        match &self.ctx.cluster.kubeconfig_target {
            Some(target) => {
                merge_into_file(target, &[yaml], None).map_err(|e| {
                    StepError(format!(
                        "merging {cluster} into {}: {}",
                        target.display(),
                        StepError::from_chain(&e)
                    ))
                })?;
                messages.message(step, &format!("context {cluster} in {}", target.display()));
            }
            None => messages.message(
                step,
                &format!(
                    "neither $KUBECONFIG nor $HOME is set; kubeconfig kept at {}",
                    stored.display()
                ),
            ),
        }
        Ok(())
    }
}
