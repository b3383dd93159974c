//! `launch/<node>`: make the node's machine exist and run. The provider is
//! asked first, every time, so a machine is never launched twice: an
//! existing running machine is left alone, a stopped one is started, and
//! only a missing one is launched (with a token issued just before).

use super::UpContext;
use crate::agent_plane::DEFAULT_TOKEN_TTL;
use crate::orchestrator::graph::{StepError, StepId, StepJob, StepMessages};
use crate::provider::{LaunchSpec, ProviderError, VmState};
use async_trait::async_trait;
use std::sync::Arc;

pub struct Launch {
    ctx: Arc<UpContext>,
    node: String,
}

impl Launch {
    pub fn new(ctx: Arc<UpContext>, node: &str) -> Launch {
        Launch {
            ctx,
            node: node.to_owned(),
        }
    }

    fn fail(&self, e: &ProviderError) -> StepError {
        StepError(format!("{}: {}", self.node, StepError::from_chain(e)))
    }

    async fn create(&self) -> Result<(), StepError> {
        let ctx = &self.ctx;
        let name = self.node.as_str();
        let topology = ctx.resolved.topology();
        let node = topology
            .node(name)
            .ok_or_else(|| StepError(format!("{name} is not in the topology")))?;
        let address = ctx
            .resolved
            .node_ip(name)
            .ok_or_else(|| StepError(format!("{name} has no resolved address")))?;
        let token = ctx
            .control
            .clone()
            .issue_token(name, DEFAULT_TOKEN_TTL)
            .await
            .map_err(|e| StepError(format!("{name}: issuing an enrolment token: {e}")))?;
        let config = ctx.agent_config(name, Some(token.token))?;
        let user_data = if ctx.needs_user_data {
            Some(ctx.user_data(name, &config).await?)
        } else {
            None
        };
        let spec = LaunchSpec {
            name: name.to_owned(),
            cpus: node.cpus,
            memory_bytes: node.memory.bytes(),
            disk_bytes: node.disk.bytes(),
            address,
            prefix_len: ctx.resolved.subnet().prefix_len(),
            gateway: ctx.resolved.host_agent_address(),
            node_agent_config: config,
            user_data,
        };
        ctx.provider
            .launch(&spec)
            .await
            .map(drop)
            .map_err(|e| self.fail(&e))
    }
}

#[async_trait]
impl StepJob for Launch {
    /// Done when the provider shows the machine up.
    async fn satisfied(&self) -> Result<bool, StepError> {
        let vm = self
            .ctx
            .provider
            .info(&self.node)
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(vm.is_some_and(|vm| matches!(vm.state, VmState::Running | VmState::Starting)))
    }

    async fn run(&self, step: &StepId, messages: &dyn StepMessages) -> Result<(), StepError> {
        let provider = &self.ctx.provider;
        let existing = provider.info(&self.node).await.map_err(|e| self.fail(&e))?;
        match existing.map(|vm| vm.state) {
            None => self.create().await,
            Some(VmState::Running | VmState::Starting) => {
                messages.message(step, "machine exists and runs; not launched again");
                Ok(())
            }
            Some(VmState::Deleted) => {
                // Multipass keeps deleted instances (and their names) until purged.
                provider
                    .delete(&self.node, true)
                    .await
                    .map_err(|e| self.fail(&e))?;
                self.create().await
            }
            Some(state) => {
                messages.message(step, &format!("machine exists ({state}); starting it"));
                provider.start(&self.node).await.map_err(|e| self.fail(&e))
            }
        }
    }

    /// A launch is never abandoned halfway; Ctrl-C waits for it.
    fn interruptible(&self) -> bool {
        false
    }
}
