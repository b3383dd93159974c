//! `kubeadm-init/<cluster>`: the control plane's `Kubeadm.Init` with the
//! host's CA set (the cluster's `certs::ClusterPki` under `pki/`), the
//! Pod Security admission configuration (under `admission/`) and the
//! rendered InitConfiguration, its phases streamed into the progress line.
//!
//! Resume: the step is run again on every `up`; the node answers
//! `already_done` when `admin.conf` exists and its API server is ready, and
//! refuses (asking for a reset) when the files exist but the API does not
//! answer — the host never re-runs kubeadm over a half-initialised node.

use super::targets::ClusterRef;
use super::{UpContext, rpc};
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use proto::v1::kubeadm_client::KubeadmClient;
use proto::v1::{KubeadmInitRequest, PlacedFile};
use std::sync::Arc;
use std::time::Duration;

/// Bound on one init (image pulls, the control plane's first start).
const INIT_TIMEOUT: Duration = Duration::from_secs(900);
/// Where, under `/etc/kubernetes`, the CA set goes.
const PKI_DIR: &str = "pki";
/// The admission configuration, relative to `/etc/kubernetes`
/// (kubeadm's ClusterConfiguration mounts `/etc/kubernetes/admission`).
const ADMISSION_FILE: &str = "admission/admission-config.yaml";

pub struct KubeadmInit {
    ctx: Arc<UpContext>,
    cluster: ClusterRef,
}

impl KubeadmInit {
    pub fn new(ctx: Arc<UpContext>, cluster: ClusterRef) -> KubeadmInit {
        KubeadmInit { ctx, cluster }
    }

    fn name(&self) -> &str {
        self.cluster.name().as_str()
    }

    /// The request: rendered config, CA set, admission configuration.
    fn request(&self) -> Result<KubeadmInitRequest, StepError> {
        let config_yaml =
            crate::cluster_config::kubeadm::init_config(&self.ctx.resolved, self.name())
                .map_err(StepError::from_error)?;
        let admission =
            crate::cluster_config::manifests::admission_config().map_err(StepError::from_error)?;
        Ok(KubeadmInitRequest {
            config_yaml,
            files: placed_files(&self.ctx.cluster.pki, self.name(), admission)?,
        })
    }

    async fn init(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let request = self.request()?;
        messages.message(step, &format!("waiting for {}'s init lock", self.name()));
        let _guard = self.ctx.cluster.init_locks.lock(self.name()).await;
        let node = self.cluster.control_plane();
        // The step is the cluster's: what the node said is prefixed with
        // the node's name.
        self.on_control_plane(request, step, messages)
            .await
            .map_err(|e| StepError::context(node.name().to_string(), e))
    }

    async fn on_control_plane(
        &self,
        request: KubeadmInitRequest,
        step: &StepId,
        messages: &dyn StepMessages,
    ) -> Result<(), StepError> {
        let node = self.cluster.control_plane();
        let channel = rpc::dial(&self.ctx, node).await?;
        let stream = KubeadmClient::new(channel)
            .init(request)
            .await
            .map_err(|s| rpc::refused("Kubeadm.Init", &s))?
            .into_inner();
        let finished = rpc::follow("kubeadm init", stream, step, messages).await?;
        if finished == rpc::Finished::AlreadyDone {
            messages.message(step, &format!("{} was already initialised", node.name()));
        }
        Ok(())
    }
}

/// The cluster's CA set under `pki/` and the admission configuration, as
/// the node places them (modes from `certs`, 0644 for the admission file).
pub fn placed_files(
    pki: &certs::Pki,
    cluster: &str,
    admission: String,
) -> Result<Vec<PlacedFile>, StepError> {
    let cluster_pki = pki.cluster(cluster).map_err(StepError::from_error)?;
    let mut files: Vec<PlacedFile> = cluster_pki
        .files()
        .into_iter()
        .map(|f| PlacedFile {
            path: format!("{PKI_DIR}/{}", f.relative_path),
            contents: f.contents,
            mode: f.mode,
        })
        .collect();
    files.push(PlacedFile {
        path: ADMISSION_FILE.to_owned(),
        contents: admission.into_bytes(),
        mode: 0o644,
    });
    Ok(files)
}

#[async_trait]
impl StepJob for KubeadmInit {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        rpc::within(INIT_TIMEOUT, "kubeadm init", self.init(step, messages)).await
    }

    /// An init cut short leaves a node kubeadm cannot simply continue.
    fn interruptible(&self) -> bool {
        false
    }
}
