//! Providers make and remove the machines nodes run on. The trait is narrow
//! on purpose (list / info / launch / start / stop / delete, plus the subnet
//! in use) so that Multipass, the local network-namespace provider and QEMU
//! are interchangeable and each can be tested behind it.

pub mod hostnet;
pub mod local;
pub mod multipass;
pub(crate) mod process;
pub mod qemu;
mod select;

pub use select::{
    ProviderKind, ProviderOptions, SelectError, choose, for_home, open, record_choice,
    record_machines, recorded,
};

use async_trait::async_trait;
use serde::Serialize;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The lifecycle state of a machine as its provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    Running,
    Starting,
    Stopped,
    /// Known to the provider but deleted (Multipass keeps these until purge).
    Deleted,
    /// Anything else the provider said, kept verbatim.
    Other(String),
}

impl std::fmt::Display for VmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmState::Running => f.write_str("Running"),
            VmState::Starting => f.write_str("Starting"),
            VmState::Stopped => f.write_str("Stopped"),
            VmState::Deleted => f.write_str("Deleted"),
            VmState::Other(s) => f.write_str(s),
        }
    }
}

/// What a provider knows about one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmInfo {
    pub name: String,
    pub state: VmState,
    /// Every IPv4 address the provider sees on the machine.
    pub addresses: Vec<Ipv4Addr>,
}

/// Everything needed to create one node's machine. The node agent's
/// configuration and the cloud-init user-data are rendered by the caller:
/// a provider only delivers them.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub name: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    /// The node's stable address and the node network's prefix length.
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// The host's address on the node network (the nodes' gateway).
    pub gateway: Ipv4Addr,
    /// The node agent's configuration file (YAML), as the node reads it.
    pub node_agent_config: String,
    /// Full `#cloud-config` user-data, for providers that boot a real image.
    pub user_data: Option<String>,
}

/// The node network as the host sees it: the subnet and the host's own
/// address on it (the nodes' gateway, where the host agent listens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeNetwork {
    pub subnet: ipnet::Ipv4Net,
    pub host_address: Ipv4Addr,
}

/// Where the node agent keeps its files on a machine. Real machines use the
/// system paths; the local provider gives every node its own root directory
/// on the host, so the caller must ask before rendering the agent's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLayout {
    /// The node's `/`; every path the agent probes is taken under it.
    pub root: PathBuf,
    /// The agent's key, certificate and buffer.
    pub state_dir: PathBuf,
    /// True when the machine has no journal and `Logs` reads the agent's file.
    pub log_to_file: bool,
    /// True when the "machine" is not a VM of its own (the local provider):
    /// the agent must then record the commands its operations would run
    /// (apt, modprobe, systemctl, kubeadm…) instead of running them on the
    /// developer's machine.
    pub record_commands: bool,
}

impl Default for AgentLayout {
    fn default() -> Self {
        AgentLayout {
            root: PathBuf::from("/"),
            state_dir: PathBuf::from(proto::contract::paths::STATE_DIR),
            log_to_file: false,
            record_commands: false,
        }
    }
}

/// The cause a [`ProviderError::Failed`] keeps: any error (a failed
/// command's [`crate::exec::ExecError`], an `ip` step's error, a seed or
/// image error…), so that its own causes stay reachable by `source()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A provider failure, classified so that callers can decide whether to
/// retry, carry on, or stop with advice.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// `source`, when there is one, is why running `tool` failed (the
    /// hint quotes it).
    #[error("{tool} is not installed or not on PATH: {hint}")]
    NotInstalled {
        tool: String,
        hint: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("precondition not met: {0}")]
    Precondition(String),
    #[error("machine {0} already exists")]
    NameTaken(String),
    #[error("machine {0} does not exist")]
    NotFound(String),
    #[error("not enough resources to launch {name}: {detail}")]
    Resources { name: String, detail: String },
    #[error("launching {name} timed out (the machine may still be coming up): {detail}")]
    Timeout { name: String, detail: String },
    /// `detail` is what the message says; `source`, when the failure came
    /// from another error, is that error (its text is `detail`), kept so
    /// the chain below it (an `io::Error`, a command's exit status) is not
    /// lost.
    #[error("{operation} {name} failed: {detail}")]
    Failed {
        operation: String,
        name: String,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProviderError {
    /// `operation` of `name` failed for a reason of the provider's own
    /// (a check, an unexpected answer): there is no error below it.
    pub fn failed(
        operation: impl Into<String>,
        name: impl Into<String>,
        detail: impl Into<String>,
    ) -> ProviderError {
        ProviderError::Failed {
            operation: operation.into(),
            name: name.into(),
            detail: detail.into(),
            source: None,
        }
    }

    /// `operation` of `name` failed because of `source`, which the message
    /// quotes and the error keeps.
    pub fn failed_by(
        operation: impl Into<String>,
        name: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> ProviderError {
        let source = source.into();
        ProviderError::Failed {
            operation: operation.into(),
            name: name.into(),
            detail: source.to_string(),
            source: Some(source),
        }
    }
}

/// A provider's state file is unreadable or damaged: nothing is changed
/// until the user has dealt with it (the message says how).
impl From<crate::state_file::StateFileError> for ProviderError {
    fn from(e: crate::state_file::StateFileError) -> Self {
        ProviderError::Precondition(e.to_string())
    }
}

/// The narrow interface every provider implements.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name (`local`, `multipass`, `qemu`) for messages and state.
    fn name(&self) -> &'static str;

    /// Every machine this provider manages for this home directory.
    async fn list(&self) -> Result<Vec<VmInfo>, ProviderError>;

    /// One machine; `Ok(None)` when it does not exist.
    async fn info(&self, name: &str) -> Result<Option<VmInfo>, ProviderError>;

    /// Creates and starts a machine. Fails with `NameTaken` if it exists.
    async fn launch(&self, spec: &LaunchSpec) -> Result<VmInfo, ProviderError>;

    async fn start(&self, name: &str) -> Result<(), ProviderError>;

    async fn stop(&self, name: &str) -> Result<(), ProviderError>;

    /// Removes a machine; `purge` also removes what the provider keeps
    /// after deletion (Multipass's deleted instances, local root dirs).
    async fn delete(&self, name: &str, purge: bool) -> Result<(), ProviderError>;

    /// The node network the provider really uses, when it can tell
    /// (addresses in the topology are resolved against it).
    async fn subnet(&self) -> Result<Option<ipnet::Ipv4Net>, ProviderError>;

    /// Checks what the provider needs and can tell without creating
    /// anything (its programs, a base image), so `up` fails first, before it
    /// renders, encodes or creates anything.
    async fn preflight(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Makes the node network exist on the host before anything binds to the
    /// host address (the daemon starts before any machine). Providers whose
    /// network comes with the first machine do nothing.
    async fn prepare(&self, _network: &NodeNetwork) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Removes what the provider set up beside its machines (the local
    /// bridge and state); `down` calls it after deleting every machine.
    async fn teardown(&self, _purge: bool) -> Result<(), ProviderError> {
        Ok(())
    }

    /// How machine `name`'s user-data pins the node's `address` (the
    /// topology's, with the node network's prefix); `None` when the provider
    /// gives the machine its address itself (the QEMU seed's
    /// `network-config`, the local provider's namespaces).
    fn user_data_address(
        &self,
        _name: &str,
        _address: ipnet::Ipv4Net,
    ) -> Option<cloud_init::NodeAddress> {
        None
    }

    /// Where the node agent on machine `name` keeps its files.
    fn agent_layout(&self, _name: &str) -> AgentLayout {
        AgentLayout::default()
    }

    /// What machine `name`'s boot said (cloud-init's result, read from the
    /// machine or its console), for the error `up` gives when the agent
    /// never enrolled: without it that error could only say "no report".
    /// `None` when the provider cannot tell.
    async fn boot_report(&self, _name: &str) -> Option<String> {
        None
    }
}
