//! The user-data of one hostctl node: install the agent and start it.
//!
//! This is the whole of cloud-init's job in hostctl (write files, pin the
//! address, start one service). Anything longer runs in the agent, which
//! reports progress; cloud-init runs silently against Multipass's fixed
//! launch timeout.

use crate::network::NodeAddress;
use crate::systemd::ServiceUnit;
use crate::{AgentPayload, Argv, CloudConfig, Encoding, Error, FileMode, Hostname, WriteFile};

/// Where things are installed on the node. One place, so the unit's
/// `ExecStart` and the files written by cloud-init cannot disagree.
pub mod paths {
    /// The agent executable (`ExecStart`).
    pub const AGENT_BINARY: &str = "/usr/local/bin/node-agent";
    /// Holds the enrolment token: 0600, root only.
    pub const AGENT_CONFIG: &str = "/etc/hostctl/node-agent.yaml";
    /// What `systemctl enable --now` starts.
    pub const UNIT_NAME: &str = "hostctl-node-agent.service";
    /// Under /etc so it overrides any packaged unit of the same name.
    pub const UNIT_FILE: &str = "/etc/systemd/system/hostctl-node-agent.service";
    /// Sorts after the image's `50-cloud-init.yaml`, so it adds to it.
    pub const NETPLAN_FILE: &str = "/etc/netplan/60-hostctl.yaml";
}

/// Everything a node's user-data is made of.
#[derive(Clone, Debug)]
pub struct NodeUserData {
    /// Also the Kubernetes node name.
    pub hostname: Hostname,
    /// The agent binary, already compressed (encode once, render many).
    pub node_agent: AgentPayload,
    /// The agent's configuration (host address, CA pin, node name,
    /// enrolment token) as the node agent defines it; this crate writes it
    /// verbatim and does not parse it, so the two formats cannot drift.
    /// The token in it is single-use and consumed on first enrolment, which
    /// is why it may sit in cloud-init's cached user-data afterwards.
    pub agent_config_yaml: String,
    /// Defaults to [`ServiceUnit::node_agent`]; its `ExecStart` must point
    /// at [`paths::AGENT_BINARY`].
    pub unit: ServiceUnit,
    /// The pinned address; `None` leaves networking to the provider (DHCP,
    /// or the QEMU provider's seed `network-config`).
    pub network: Option<NodeAddress>,
}

impl NodeUserData {
    /// A node with the default unit and no stable address.
    pub fn new(
        hostname: Hostname,
        node_agent: AgentPayload,
        agent_config_yaml: impl Into<String>,
    ) -> Result<Self, Error> {
        Ok(Self {
            hostname,
            node_agent,
            agent_config_yaml: agent_config_yaml.into(),
            unit: ServiceUnit::node_agent()?,
            network: None,
        })
    }

    /// Pins the node's address (see [`NodeAddress`]).
    pub fn with_address(mut self, address: NodeAddress) -> Self {
        self.network = Some(address);
        self
    }

    /// The document. Order matters in `runcmd`: the address is applied
    /// before the agent starts, because the agent's certificate names it.
    pub fn cloud_config(&self) -> Result<CloudConfig, Error> {
        if self.agent_config_yaml.trim().is_empty() {
            return Err(Error::EmptyAgentConfig);
        }
        let mut write_files = vec![
            WriteFile::new(
                paths::AGENT_BINARY,
                self.node_agent.encoded(),
                Encoding::GzipBase64,
                FileMode::EXECUTABLE,
            )?,
            WriteFile::text(
                paths::AGENT_CONFIG,
                self.agent_config_yaml.as_str(),
                FileMode::PRIVATE,
            )?,
            WriteFile::text(paths::UNIT_FILE, self.unit.render()?, FileMode::READABLE)?,
        ];
        let mut runcmd = Vec::new();
        if let Some(address) = &self.network {
            let netplan = address.network_config()?.render()?;
            write_files.push(WriteFile::text(
                paths::NETPLAN_FILE,
                netplan,
                FileMode::PRIVATE,
            )?);
            runcmd.push(Argv::new("netplan", ["apply"])?);
        }
        runcmd.push(Argv::new("systemctl", ["daemon-reload"])?);
        runcmd.push(Argv::new(
            "systemctl",
            ["enable", "--now", paths::UNIT_NAME],
        )?);
        Ok(CloudConfig {
            hostname: Some(self.hostname.clone()),
            preserve_hostname: Some(false),
            manage_etc_hosts: Some(true),
            package_update: Some(false),
            package_upgrade: Some(false),
            bootcmd: Vec::new(),
            write_files,
            runcmd,
        })
    }

    /// `#cloud-config` text, ready for `multipass launch --cloud-init`.
    pub fn render(&self) -> Result<String, Error> {
        self.cloud_config()?.render()
    }
}
