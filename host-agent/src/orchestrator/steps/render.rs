//! `render/<node>`: the node's agent config (token placeholder) and its
//! user-data into `$HOSTCTL_HOME/render/<node>/`, for review, and the size
//! check before any machine is made. Cheap and idempotent: always re-run.
//! With the local provider the user-data carries the marked placeholder
//! payload (the agent is handed over directly, never via cloud-init).

use super::UpContext;
use super::targets::NodeRef;
use super::userdata::TOKEN_PLACEHOLDER;
use crate::fsutil::write_atomic;
use crate::orchestrator::{StepError, StepId, StepJob, StepMessages};
use async_trait::async_trait;
use std::sync::Arc;

pub struct Render {
    ctx: Arc<UpContext>,
    node: NodeRef,
}

impl Render {
    pub fn new(ctx: Arc<UpContext>, node: NodeRef) -> Render {
        Render { ctx, node }
    }
}

#[async_trait]
impl StepJob for Render {
    async fn run(&self, _: &StepId, _: &dyn StepMessages) -> Result<(), StepError> {
        let node = &self.node;
        let dir = self.ctx.render_dir.join(node.name().as_str());
        let config = self
            .ctx
            .agent_config(node, Some(TOKEN_PLACEHOLDER.to_owned()))?;
        let write = |name: &str, text: &str| {
            write_atomic(&dir.join(name), text.as_bytes(), 0o600).map_err(StepError::from_error)
        };
        write("node-agent.yaml", &config)?;
        let text = self.ctx.user_data(node, &config).await?;
        write("user-data", &text)?;
        Ok(())
    }
}
