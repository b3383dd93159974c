//! `prerequisites/<node>`: ask the node to prepare itself for kubeadm
//! (`Provisioning.InstallPrerequisites`) with its cluster's Kubernetes
//! version and the topology's mirrors, streaming the node's events into the
//! progress line. The node's steps are idempotent and report
//! `already_done`, so the step is simply run again on every `up`.

use super::targets::NodeRef;
use super::{UpContext, rpc};
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use proto::v1::PrerequisitesRequest;
use proto::v1::provisioning_client::ProvisioningClient;
use std::sync::Arc;
use std::time::Duration;

/// Bound on the whole preparation (package downloads included).
const PREREQ_TIMEOUT: Duration = Duration::from_secs(1800);

/// Where nodes fetch packages and images through, when the host runs
/// mirrors; empty strings mean "directly".
#[derive(Debug, Clone, Default)]
pub struct Mirrors {
    pub apt_proxy: String,
    pub registry_mirror: String,
    /// A flat apt repository the node installs its packages from instead
    /// of its own sources and pkgs.k8s.io (nodes with no internet route).
    pub apt_repository: String,
}

impl Mirrors {
    /// The topology's `mirrors` (none by default).
    pub fn from_topology(topology: &topology::Topology) -> Mirrors {
        let text = |url: Option<&topology::MirrorUrl>| url.map(|u| u.as_str().to_owned());
        let declared = topology.mirrors.as_ref();
        Mirrors {
            apt_proxy: text(declared.and_then(|m| m.apt_proxy.as_ref())).unwrap_or_default(),
            registry_mirror: text(declared.and_then(|m| m.registry_mirror.as_ref()))
                .unwrap_or_default(),
            apt_repository: text(declared.and_then(|m| m.apt_repository.as_ref()))
                .unwrap_or_default(),
        }
    }
}

pub struct Prerequisites {
    ctx: Arc<UpContext>,
    node: NodeRef,
}

impl Prerequisites {
    pub fn new(ctx: Arc<UpContext>, node: NodeRef) -> Prerequisites {
        Prerequisites { ctx, node }
    }

    fn request(&self) -> PrerequisitesRequest {
        PrerequisitesRequest {
            kubernetes_version: self.node.kubernetes_version().to_string(),
            apt_proxy: self.ctx.mirrors.apt_proxy.clone(),
            registry_mirror: self.ctx.mirrors.registry_mirror.clone(),
            apt_repository: self.ctx.mirrors.apt_repository.clone(),
        }
    }

    async fn install(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let channel = rpc::dial(&self.ctx, &self.node).await?;
        let stream = ProvisioningClient::new(channel)
            .install_prerequisites(self.request())
            .await
            .map_err(|s| rpc::refused("InstallPrerequisites", &s))?
            .into_inner();
        rpc::follow("prerequisites", stream, step, messages).await?;
        Ok(())
    }
}

#[async_trait]
impl StepJob for Prerequisites {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        rpc::within(
            PREREQ_TIMEOUT,
            "prerequisites",
            self.install(step, messages),
        )
        .await
    }
}
