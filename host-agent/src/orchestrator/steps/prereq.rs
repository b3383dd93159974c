//! `prerequisites/<node>`: ask the node to prepare itself for kubeadm
//! (`Provisioning.InstallPrerequisites`) with its cluster's Kubernetes
//! version and the topology's mirrors, streaming the node's events into the
//! progress line. The node's steps are idempotent and report
//! `already_done`, so the step is simply run again on every `up`.

use super::UpContext;
use crate::orchestrator::graph::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use proto::v1::PrerequisitesRequest;
use proto::v1::progress_event::Outcome;
use proto::v1::provisioning_client::ProvisioningClient;
use std::net::IpAddr;
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
        }
    }
}

pub struct Prerequisites {
    ctx: Arc<UpContext>,
    node: String,
}

impl Prerequisites {
    pub fn new(ctx: Arc<UpContext>, node: &str) -> Prerequisites {
        Prerequisites {
            ctx,
            node: node.to_owned(),
        }
    }

    fn request(&self) -> Result<PrerequisitesRequest, StepError> {
        let topology = self.ctx.resolved.topology();
        let cluster = topology
            .node(&self.node)
            .and_then(|n| topology.cluster(&n.cluster))
            .ok_or_else(|| StepError(format!("{}: no cluster in the topology", self.node)))?;
        Ok(PrerequisitesRequest {
            kubernetes_version: cluster.kubernetes_version.to_string(),
            apt_proxy: self.ctx.mirrors.apt_proxy.clone(),
            registry_mirror: self.ctx.mirrors.registry_mirror.clone(),
        })
    }

    async fn install(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let node = &self.node;
        let ip = self
            .ctx
            .resolved
            .node_ip(node)
            .ok_or_else(|| StepError(format!("{node} has no resolved address")))?;
        let channel = self
            .ctx
            .nodes
            .dial(IpAddr::V4(ip))
            .await
            .map_err(|e| StepError(format!("{node}: {e}")))?;
        let mut stream = ProvisioningClient::new(channel)
            .install_prerequisites(self.request()?)
            .await
            .map_err(|s| {
                StepError(format!(
                    "{node}: the node refused InstallPrerequisites: {}",
                    status_text(&s)
                ))
            })?
            .into_inner();
        loop {
            let event = stream
                .message()
                .await
                .map_err(|s| {
                    StepError(format!(
                        "{node}: prerequisites stream broke: {}",
                        status_text(&s)
                    ))
                })?
                .ok_or_else(|| {
                    StepError(format!(
                        "{node}: the node ended the prerequisites stream without a result"
                    ))
                })?;
            let text = match (event.phase.is_empty(), event.message.is_empty()) {
                (false, false) => format!("{}: {}", event.phase, event.message),
                (false, true) => event.phase.clone(),
                _ => event.message.clone(),
            };
            if !text.is_empty() {
                messages.message(step, &text);
            }
            match event.outcome {
                Some(Outcome::Done(_)) => return Ok(()),
                Some(Outcome::Error(e)) => {
                    return Err(StepError(format!("{node}: {}: {}", event.phase, e.message)));
                }
                None => {}
            }
        }
    }
}

fn status_text(s: &tonic::Status) -> String {
    if s.code() == tonic::Code::Unimplemented {
        "the node agent does not implement it (rebuild and relaunch node-agent)".to_owned()
    } else {
        format!("{:?}: {}", s.code(), s.message())
    }
}

#[async_trait]
impl StepJob for Prerequisites {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        tokio::time::timeout(PREREQ_TIMEOUT, self.install(step, messages))
            .await
            .map_err(|_| {
                StepError(format!(
                    "{}: prerequisites did not finish within {} s",
                    self.node,
                    PREREQ_TIMEOUT.as_secs()
                ))
            })?
    }
}
