//! `launch/<node>`: make the node's machine exist and run. The provider is
//! asked first, every time, so a machine is never launched twice: an
//! existing running machine is left alone, a stopped one is started, and
//! only a missing one is launched (with a token issued just before).

use super::UpContext;
use super::targets::NodeRef;
use crate::agent_plane::DEFAULT_TOKEN_TTL;
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use crate::provider::{LaunchSpec, VmState};
use async_trait::async_trait;
use std::sync::Arc;

pub struct Launch {
    ctx: Arc<UpContext>,
    node: NodeRef,
}

impl Launch {
    pub fn new(ctx: Arc<UpContext>, node: NodeRef) -> Launch {
        Launch { ctx, node }
    }

    /// The node's name, as the provider knows the machine.
    fn name(&self) -> &str {
        self.node.name().as_str()
    }

    async fn create(&self) -> Result<(), StepError> {
        let ctx = &self.ctx;
        let name = self.name();
        let token = ctx
            .control
            .clone()
            .issue_token(name, DEFAULT_TOKEN_TTL)
            .await
            .map_err(|e| StepError::context("issuing an enrolment token", e))?;
        let config = ctx.agent_config(&self.node, Some(token.token))?;
        let user_data = if ctx.needs_user_data {
            Some(ctx.user_data(&self.node, &config).await?)
        } else {
            None
        };
        let machine = self.node.spec();
        let spec = LaunchSpec {
            name: name.to_owned(),
            cpus: machine.cpus,
            memory_bytes: machine.memory.bytes(),
            disk_bytes: machine.disk.bytes(),
            address: self.node.address(),
            prefix_len: ctx.resolved.subnet().prefix_len(),
            gateway: ctx.resolved.host_agent_address(),
            node_agent_config: config,
            user_data,
        };
        ctx.provider
            .launch(&spec)
            .await
            .map(drop)
            .map_err(StepError::from_error)
    }
}

#[async_trait]
impl StepJob for Launch {
    /// Done when the provider shows the machine up.
    async fn satisfied(&self) -> Result<bool, StepError> {
        let vm = self
            .ctx
            .provider
            .info(self.name())
            .await
            .map_err(StepError::from_error)?;
        Ok(vm.is_some_and(|vm| matches!(vm.state, VmState::Running | VmState::Starting)))
    }

    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let provider = &self.ctx.provider;
        let existing = provider
            .info(self.name())
            .await
            .map_err(StepError::from_error)?;
        match existing.map(|vm| vm.state) {
            None => self.create().await,
            Some(VmState::Running | VmState::Starting) => {
                messages.message(step, "machine exists and runs; not launched again");
                Ok(())
            }
            Some(VmState::Deleted) => {
                // Multipass keeps deleted instances (and their names) until purged.
                provider
                    .delete(self.name(), true)
                    .await
                    .map_err(StepError::from_error)?;
                self.create().await
            }
            Some(state) => {
                messages.message(step, &format!("machine exists ({state}); starting it"));
                provider
                    .start(self.name())
                    .await
                    .map_err(StepError::from_error)
            }
        }
    }

    /// A launch is never abandoned halfway; Ctrl-C waits for it.
    fn interruptible(&self) -> bool {
        false
    }
}
