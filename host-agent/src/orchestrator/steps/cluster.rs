//! What the per-cluster steps (kubeadm, kubeconfig, CNI, readiness,
//! add-ons) share: the PKI, Helm, where upstream manifests come from, where
//! kubeconfigs go, and the host's per-cluster init lock. Built once by
//! `up` at the command edge (environment, flags), so the steps themselves
//! read no environment.

use super::UpContext;
use crate::cluster_api::install::{GATEWAY_API_CRDS, METALLB_MANIFEST, ManifestSource, YamlDir};
use crate::helm::Helm;
use crate::orchestrator::StepError;
use certs::Pki;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

/// See the module documentation.
pub struct ClusterSettings {
    pub pki: Arc<Pki>,
    pub helm: Arc<dyn Helm>,
    /// Where the charts helm installs come from (mirror, cache, a pull).
    pub charts: crate::charts::ChartStore,
    pub manifests: Manifests,
    /// The user's kubeconfig to merge into (`$KUBECONFIG`'s first path or
    /// `~/.kube/config`); `None` when neither is known.
    pub kubeconfig_target: Option<PathBuf>,
    /// `$HOSTCTL_HOME/kubeconfigs`: one `<cluster>.conf` each (0600).
    pub kubeconfig_dir: PathBuf,
    /// What was merged into which kubeconfig (for `down --purge`).
    pub merged: crate::state_file::StateFile<super::kubeconfig::MergedRecord>,
    /// The kubeadm nodes run, when not their own (see [`crate::environment::KUBEADM`]).
    pub kubeadm_binary: Option<PathBuf>,
    /// How long `nodes-ready/<cluster>` waits.
    pub ready_timeout: Duration,
    pub init_locks: InitLocks,
    /// What the `addon/…` steps share.
    pub addons: AddonSettings,
}

/// What the catalogue add-on steps share.
pub struct AddonSettings {
    /// Where Argo CD reads the platform from.
    pub platform: crate::addons::render::PlatformSource,
    /// `$HOSTCTL_HOME/addons.json`: what is installed where.
    pub record: crate::state_file::StateFile<crate::addons::record::AddonRecord>,
    pub limits: crate::addons::install::Limits,
    /// How the Vault add-on's bootstrap reaches Vault.
    pub vault: VaultSettings,
    /// Each cluster's backup location and key on the host's object store,
    /// filled by `object-store/host` (empty unless the topology asks for
    /// backups).
    pub backups: super::object_store::BackupTargets,
}

/// What the Vault bootstrap hook needs beyond the PKI.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// `$HOSTCTL_HOME` (the key files live in its `pki/vault/`).
    pub home: PathBuf,
    /// `$HOSTCTL_VAULT_ADDRESS`, else the reserved MetalLB address.
    pub address: Option<String>,
    /// How long the bootstrap waits for Vault to answer and to lead.
    pub wait: vault::WaitPolicy,
}

/// Where the Gateway API CRDs and MetalLB's manifest come from.
#[derive(Clone)]
pub struct Manifests {
    pub gateway_api: Arc<dyn ManifestSource>,
    pub metallb: Arc<dyn ManifestSource>,
}

impl Manifests {
    /// The pinned upstream URLs (production).
    pub fn pinned() -> Manifests {
        Manifests {
            gateway_api: Arc::new(GATEWAY_API_CRDS),
            metallb: Arc::new(METALLB_MANIFEST),
        }
    }

    /// `<dir>/gateway-api/*.yaml` and `<dir>/metallb/*.yaml`.
    pub fn from_dir(dir: &Path) -> Manifests {
        Manifests {
            gateway_api: Arc::new(YamlDir(dir.join("gateway-api"))),
            metallb: Arc::new(YamlDir(dir.join("metallb"))),
        }
    }

    /// [`Manifests::from_dir`] when a directory is given, else pinned.
    pub fn from_option(dir: Option<&Path>) -> Manifests {
        dir.map_or_else(Manifests::pinned, Manifests::from_dir)
    }
}

/// One `kubeadm init` per cluster at a time, whatever else runs: the graph
/// has one init step per cluster, and this lock keeps it so even if two
/// graphs (or a retry inside one) ever raced for the same cluster.
#[derive(Default)]
pub struct InitLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl InitLocks {
    /// Waits for `cluster`'s lock; held until the guard is dropped.
    pub async fn lock(&self, cluster: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entry(cluster.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Whether `cluster`'s init is under way (for tests and diagnostics).
    pub fn busy(&self, cluster: &str) -> bool {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(cluster).is_some_and(|l| l.try_lock().is_err())
    }
}

/// An admin client of `cluster` without waiting for its API server: for
/// postcondition checks, which must answer at once ("not yet") rather than
/// hold up the start of `up`.
pub async fn admin_now(
    ctx: &UpContext,
    cluster: &str,
) -> Result<(kube::Client, String), StepError> {
    crate::cluster_api::client::admin_client(
        &ctx.cluster.pki,
        &ctx.resolved,
        cluster,
        crate::cluster_api::client::DEFAULT_REQUEST_TIMEOUT,
    )
    .await
    .map_err(StepError::from_error)
}

/// How often a step polls an API server that does not answer yet.
const API_POLL: Duration = Duration::from_secs(1);

/// A fresh admin client of `cluster` and its kubeconfig (for helm), once
/// the API server answers `/readyz`: steps after `kubeadm init` run "as
/// soon as the API answers", and a server that is still coming up (or a
/// load balancer still settling) refuses connections for a moment. Waits at
/// most `ready_timeout`, then fails with the last answer.
pub async fn admin(ctx: &UpContext, cluster: &str) -> Result<(kube::Client, String), StepError> {
    let (client, kubeconfig) = admin_now(ctx, cluster).await?;
    let deadline = tokio::time::Instant::now() + ctx.cluster.ready_timeout;
    loop {
        let health = crate::cluster_api::health::api_health(&client).await;
        if health.ok {
            return Ok((client, kubeconfig));
        }
        if tokio::time::Instant::now() + API_POLL > deadline {
            return Err(StepError::new(format!(
                "the API server of {cluster} did not answer /readyz within {} s: {}",
                ctx.cluster.ready_timeout.as_secs(),
                health.error.unwrap_or_default()
            )));
        }
        tokio::time::sleep(API_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn init_lock_serialises_one_cluster_not_others() {
        let locks = InitLocks::default();
        let held = locks.lock("app1").await;
        assert!(locks.busy("app1"));
        assert!(!locks.busy("app2"));
        let _other = locks.lock("app2").await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), locks.lock("app1")).await;
        assert!(waiting.is_err(), "a second init of app1 got the lock");
        drop(held);
        let _again = locks.lock("app1").await;
    }
}
