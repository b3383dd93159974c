//! A node's cloud-init user-data, shared by `hostctl render` and `up`: the
//! node-agent binary (gz+b64, encoded once per run), its configuration,
//! and the size check against what `multipass launch` accepts.

use cloud_init::{
    AgentPayload, Hostname, MULTIPASS_USER_DATA_LIMIT, NodeAddress, NodeUserData, ensure_fits,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// What stands in for the token in rendered (reviewed) configs.
pub const TOKEN_PLACEHOLDER: &str = "<issued at launch>";

/// Marks user-data rendered without a real node-agent binary.
pub const PLACEHOLDER_PAYLOAD: &[u8] =
    b"#!/bin/sh\necho 'PLACEHOLDER: hostctl render found no node-agent binary' >&2\nexit 1\n";

/// Why user-data could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum UserDataError {
    #[error("cannot read the node-agent binary {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("user-data for {node}")]
    Render {
        node: String,
        #[source]
        source: cloud_init::Error,
    },
    #[error(
        "no node-agent binary found (build it with `make dist`, or pass --node-agent-bin target/node-dist/node-agent)"
    )]
    NoBinary,
    #[error(
        "the node-agent binary {} is too big for user-data ({encoded} bytes, Multipass takes {limit} in all): it is not the size-optimised build; use `make dist` (it puts one beside hostctl) or --node-agent-bin target/node-dist/node-agent",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        encoded: usize,
        limit: usize,
    },
}

/// The node-agent binary `up` and `render` embed: `explicit`, else
/// `$HOSTCTL_NODE_AGENT`, else `node-agent` beside the running `hostctl`.
pub fn locate_node_agent(explicit: Option<&Path>) -> Option<PathBuf> {
    let beside_us = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("node-agent")));
    explicit
        .map(Path::to_path_buf)
        .or_else(|| crate::environment::NODE_AGENT.os().map(PathBuf::from))
        .or(beside_us)
        .filter(|p| p.is_file())
}

/// Encodes the binary at most once per run, on first use, off the async
/// threads (gzip of a multi-megabyte binary takes a moment).
#[derive(Default)]
pub struct PayloadSource {
    binary: Option<PathBuf>,
    placeholder: bool,
    cell: OnceCell<Arc<AgentPayload>>,
}

impl PayloadSource {
    pub fn new(binary: Option<PathBuf>) -> PayloadSource {
        PayloadSource {
            binary,
            placeholder: false,
            cell: OnceCell::new(),
        }
    }

    /// For providers that hand the agent over directly (local): the
    /// user-data is for review only, so it carries the marked placeholder
    /// instead of a binary that may be a 200 MB debug build.
    pub fn placeholder() -> PayloadSource {
        PayloadSource {
            binary: None,
            placeholder: true,
            cell: OnceCell::new(),
        }
    }

    pub async fn get(&self) -> Result<Arc<AgentPayload>, UserDataError> {
        if self.placeholder {
            return self
                .cell
                .get_or_try_init(|| async { placeholder_payload().map(Arc::new) })
                .await
                .cloned();
        }
        let path = self.binary.clone().ok_or(UserDataError::NoBinary)?;
        self.cell
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || load_payload(&path))
                    .await
                    .unwrap_or_else(|e| {
                        Err(UserDataError::Read {
                            path: PathBuf::new(),
                            source: std::io::Error::other(e.to_string()),
                        })
                    })
                    .map(Arc::new)
            })
            .await
            .cloned()
    }
}

/// Checks the agent once, before any machine: it must exist and, encoded,
/// leave room for the rest of the user-data under Multipass's limit. A debug
/// build (~190 MB) failed only after being compressed once per node.
pub async fn preflight(source: &PayloadSource) -> Result<(), UserDataError> {
    // The config, unit and netplan are a few KiB; the CA pin and token less.
    const REST: usize = 32 * 1024;
    // gzip does not shrink an executable eight-fold: a bigger binary cannot
    // fit, and compressing it first would cost minutes (a debug build).
    if let Some(path) = &source.binary
        && let Ok(meta) = std::fs::metadata(path)
        && meta.len() > 8 * MULTIPASS_USER_DATA_LIMIT as u64
    {
        return Err(UserDataError::TooLarge {
            path: path.clone(),
            encoded: usize::try_from(meta.len()).unwrap_or(usize::MAX),
            limit: MULTIPASS_USER_DATA_LIMIT,
        });
    }
    let payload = source.get().await?;
    if payload.encoded().len() + REST > MULTIPASS_USER_DATA_LIMIT {
        return Err(UserDataError::TooLarge {
            path: source.binary.clone().unwrap_or_default(),
            encoded: payload.encoded().len(),
            limit: MULTIPASS_USER_DATA_LIMIT,
        });
    }
    Ok(())
}

/// Reads and encodes a node-agent binary.
pub fn load_payload(path: &Path) -> Result<AgentPayload, UserDataError> {
    let bytes = std::fs::read(path).map_err(|source| UserDataError::Read {
        path: path.to_owned(),
        source,
    })?;
    AgentPayload::from_binary(&bytes).map_err(|source| UserDataError::Render {
        node: String::new(),
        source,
    })
}

/// The placeholder payload, for `render` without a binary.
pub fn placeholder_payload() -> Result<AgentPayload, UserDataError> {
    AgentPayload::from_binary(PLACEHOLDER_PAYLOAD).map_err(|source| UserDataError::Render {
        node: String::new(),
        source,
    })
}

/// `#cloud-config` for `node`, pinning `address` when the provider asks for
/// it (see [`crate::provider::Provider::user_data_address`]), refused when
/// Multipass would not take it.
pub fn render(
    node: &str,
    payload: &AgentPayload,
    agent_config_yaml: &str,
    address: Option<NodeAddress>,
) -> Result<String, UserDataError> {
    let err = |source| UserDataError::Render {
        node: node.to_owned(),
        source,
    };
    let hostname = Hostname::new(node).map_err(err)?;
    let text = NodeUserData::new(hostname, payload.clone(), agent_config_yaml)
        .map(|d| match address {
            Some(a) => d.with_address(a),
            None => d,
        })
        .and_then(|d| d.render())
        .map_err(err)?;
    ensure_fits(&text, MULTIPASS_USER_DATA_LIMIT).map_err(err)?;
    Ok(text)
}
