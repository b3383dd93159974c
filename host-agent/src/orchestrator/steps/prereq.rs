//! `prerequisites/<node>`: ask the node to prepare itself for kubeadm
//! (`Provisioning.InstallPrerequisites`) with its cluster's Kubernetes
//! version and the topology's mirrors, streaming the node's events into the
//! progress line. The node's steps are idempotent and report
//! `already_done`, so the step is simply run again on every `up`.

use super::targets::NodeRef;
use super::{UpContext, rpc};
use crate::mirrors::Endpoints;
use crate::mirrors::nodes::ManagedMirrors;
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
    /// hostctl's own Harbor and Nexus (`mirrors: { managed: true }`).
    pub managed: Option<ManagedMirrors>,
}

impl Mirrors {
    /// The topology's `mirrors` (none by default). Managed mirrors answer
    /// at the host's address on the node network, with Harbor's
    /// certificate signed by the lab root (`lab_ca_pem`).
    pub fn from_topology(
        topology: &topology::Topology,
        host: std::net::Ipv4Addr,
        lab_ca_pem: Option<&str>,
    ) -> Mirrors {
        let text = |url: Option<&topology::MirrorUrl>| url.map(|u| u.as_str().to_owned());
        let declared = topology.mirrors.as_ref();
        Mirrors {
            apt_proxy: text(declared.and_then(|m| m.apt_proxy.as_ref())).unwrap_or_default(),
            registry_mirror: text(declared.and_then(|m| m.registry_mirror.as_ref()))
                .unwrap_or_default(),
            apt_repository: text(declared.and_then(|m| m.apt_repository.as_ref()))
                .unwrap_or_default(),
            managed: topology.managed_mirrors().then(|| ManagedMirrors {
                endpoints: Endpoints { host },
                ca_pem: lab_ca_pem.unwrap_or_default().to_owned(),
            }),
        }
    }

    /// The request's mirror fields for a node of Kubernetes `version`.
    pub fn request(&self, version: topology::KubeVersion) -> PrerequisitesRequest {
        let managed = self.managed.as_ref();
        PrerequisitesRequest {
            kubernetes_version: version.to_string(),
            apt_proxy: self.apt_proxy.clone(),
            registry_mirror: self.registry_mirror.clone(),
            apt_repository: self.apt_repository.clone(),
            registry_hosts: managed.map(|m| m.registry_hosts()).unwrap_or_default(),
            registry_ca_pem: managed.map(|m| m.ca_pem.clone()).unwrap_or_default(),
            kubernetes_repository: managed
                .map(|m| m.kubernetes_repository(version))
                .unwrap_or_default(),
            ubuntu_archive: managed.map(|m| m.ubuntu_archive()).unwrap_or_default(),
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
        self.ctx.mirrors.request(self.node.kubernetes_version())
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
