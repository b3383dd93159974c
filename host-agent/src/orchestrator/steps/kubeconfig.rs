//! `kubeconfig/<cluster>`: mint the cluster's admin kubeconfig from the
//! host's CA (`cluster_api::kubeconfig`), keep it as
//! `$HOSTCTL_HOME/kubeconfigs/<cluster>.conf` (0600), and merge its
//! cluster, user and context into the user's kubeconfig
//! (`cluster_api::merge`, as `hostctl kubeconfig --merge` does: other entries and
//! the current context are left alone). Re-minting on every `up` is cheap
//! and replaces a certificate nearing expiry. What was merged where is
//! recorded in `$HOSTCTL_HOME/kubeconfig-merged.json` ([`MergedRecord`]),
//! so that `down --purge` removes exactly those entries again.

use super::UpContext;
use super::targets::ClusterRef;
use crate::cluster_api::kubeconfig::admin_kubeconfig;
use crate::cluster_api::merge::merge_into_file;
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use crate::state_file::StateDocument;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The record of merged entries, under `$HOSTCTL_HOME`.
pub const MERGED_FILE: &str = "kubeconfig-merged.json";

/// Which kubeconfig entries (cluster, user and context names) hostctl put
/// into which file.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedRecord {
    pub files: BTreeMap<PathBuf, BTreeSet<String>>,
}

impl StateDocument for MergedRecord {
    const MODE: u32 = 0o600;
    const IF_DAMAGED: &'static str = "remove it; `down --purge` then leaves hostctl's contexts in your kubeconfig for you to delete (`kubectl config delete-context`)";
}

impl MergedRecord {
    /// The record of the home at `home`.
    pub fn path(home: &Path) -> PathBuf {
        home.join(MERGED_FILE)
    }
}

/// The stored kubeconfig holds a client key.
const MODE: u32 = 0o600;

pub struct Kubeconfig {
    ctx: Arc<UpContext>,
    cluster: ClusterRef,
}

impl Kubeconfig {
    pub fn new(ctx: Arc<UpContext>, cluster: ClusterRef) -> Kubeconfig {
        Kubeconfig { ctx, cluster }
    }

    /// `$HOSTCTL_HOME/kubeconfigs/<cluster>.conf`.
    pub fn stored_path(&self) -> PathBuf {
        self.ctx
            .cluster
            .kubeconfig_dir
            .join(format!("{}.conf", self.cluster.name()))
    }
}

#[async_trait]
impl StepJob for Kubeconfig {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let cluster = self.cluster.name().as_str();
        let yaml = admin_kubeconfig(&self.ctx.cluster.pki, &self.ctx.resolved, cluster)
            .map_err(StepError::from_error)?;
        let stored = self.stored_path();
        crate::fsutil::write_atomic(&stored, yaml.as_bytes(), MODE)
            .map_err(StepError::from_error)?;
        match &self.ctx.cluster.kubeconfig_target {
            Some(target) => {
                let fail = |e: crate::cluster_api::merge::MergeError| {
                    StepError::context(format!("merging {cluster} into {}", target.display()), e)
                };
                let names = crate::cluster_api::merge::entry_names(&yaml).map_err(fail)?;
                // Recorded before the merge: a crash in between leaves a
                // record of entries that may not be there (harmless to
                // remove), never entries without a record.
                self.ctx
                    .cluster
                    .merged
                    .update(|r| {
                        r.files
                            .entry(target.clone())
                            .or_default()
                            .extend(names)
                    })
                    .await
                    .map_err(StepError::from_error)?;
                merge_into_file(target, &[yaml], None).map_err(fail)?;
                messages.message(step, &format!("context {cluster} in {}", target.display()));
            }
            None => messages.message(
                step,
                &format!(
                    "kubeconfig kept at {} (not merged: --no-kubeconfig, or neither $KUBECONFIG nor $HOME is set)",
                    stored.display()
                ),
            ),
        }
        Ok(())
    }
}
