//! `mirrors/host`: Harbor and Nexus up and configured on the host's Docker
//! (`crate::mirrors`), for a topology with `mirrors: {managed: true}`. It
//! is a step of the graph rather than a prelude of `up`, so the machines
//! launch and enrol while the mirrors start (Harbor's first start pulls
//! images and may run under emulation), and only the nodes'
//! prerequisites, which pull through the mirrors, wait for it. It is
//! idempotent and cheap once the mirrors are up, so every run runs it
//! again (a mirror stopped since the last `up` is started), as the default
//! [`StepJob::satisfied`] says.

use super::UpContext;
use super::targets::HostRef;
use crate::mirrors::error::MirrorError;
use crate::mirrors::service::UpReport;
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use std::sync::Arc;

/// Brings the host's mirrors up: the real ones
/// ([`crate::commands::mirrors::HostMirrors`]) or, in tests, a stand-in.
#[async_trait]
pub trait MirrorsUp: Send + Sync {
    async fn up(
        &self,
        topology: &topology::Topology,
        lab: &certs::LabRoot,
    ) -> Result<UpReport, MirrorError>;
}

pub struct StartMirrors {
    ctx: Arc<UpContext>,
}

impl StartMirrors {
    pub fn new(ctx: Arc<UpContext>, host: HostRef) -> StartMirrors {
        debug_assert!(host.mirrors(), "a mirrors step for a host without them");
        StartMirrors { ctx }
    }
}

#[async_trait]
impl StepJob for StartMirrors {
    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let lab = self
            .ctx
            .cluster
            .pki
            .lab_root()
            .ok_or_else(|| StepError::from_error(MirrorError::NoLabRoot))?;
        messages.message(step, "Harbor and Nexus");
        let report = self
            .ctx
            .host_mirrors
            .up(self.ctx.resolved.topology(), lab)
            .await
            .map_err(StepError::from_error)?;
        if report.changed.is_empty() {
            messages.message(step, "already up and configured");
        }
        for change in &report.changed {
            messages.message(step, change);
        }
        Ok(())
    }
}
