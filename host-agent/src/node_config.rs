//! The node agent's configuration file as the host writes it. The host keeps
//! its own copy of the format (camelCase YAML) because the two agents never
//! depend on each other; the end-to-end tests feed this rendering to the real
//! `node-agent`, which refuses unknown fields, so the copies cannot drift
//! apart unnoticed.

use crate::agent_plane::{NODE_SERVICE_PORT, enrol_port_for};
use crate::provider::AgentLayout;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// The file `node-agent --config` reads.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAgentConfig {
    pub node: String,
    pub cluster: String,
    pub control_plane: bool,
    pub host: HostEndpoints,
    pub ca_pem: String,
    /// Single-use; absent once the node holds a certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolment_token: Option<String>,
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    pub report_interval_seconds: u32,
    pub buffer_capacity: u32,
    pub root: PathBuf,
    pub log_source: LogSource,
    pub command_runner: CommandRunner,
    /// Which kubeadm the node runs; absent means the node's default
    /// (`kubeadm` on PATH). See [`NodeAgentConfig::with_kubeadm_binary`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeadm: Option<KubeadmBinary>,
}

/// The node agent's `kubeadm:` section, as far as the host sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeadmBinary {
    pub binary: PathBuf,
    /// Run it even under `commandRunner: record`.
    pub always_run: bool,
}

/// How the node agent runs the commands of its operations (the node
/// agent's `commandRunner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandRunner {
    /// Run them: a real VM.
    Real,
    /// Record them to `<root>/var/log/hostctl/commands.jsonl` and run
    /// nothing: a node that shares the host's kernel (the local provider).
    Record,
}

/// How the node reaches and recognises the host.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEndpoints {
    pub enrol_endpoint: String,
    pub endpoint: String,
    /// The name (here an IP) the host's certificate must carry.
    pub server_name: String,
}

/// Where the node agent's `Logs` RPC reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    Journald,
    File,
}

/// The facts one node's configuration is made from.
#[derive(Debug, Clone)]
pub struct NodeConfigInput<'a> {
    pub node: &'a str,
    pub cluster: &'a str,
    pub control_plane: bool,
    pub node_address: Ipv4Addr,
    pub host_address: Ipv4Addr,
    /// The Host service's port; enrolment listens on the next one.
    pub host_port: u16,
    pub ca_pem: &'a str,
    pub token: Option<String>,
    pub report_interval_seconds: u32,
    pub buffer_capacity: u32,
    pub layout: &'a AgentLayout,
}

/// Why a configuration could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the node agent config for {node}: {message}")]
pub struct RenderError {
    pub node: String,
    pub message: String,
}

impl NodeAgentConfig {
    /// Assembles the configuration; the host certificate carries the host
    /// address as an IP SAN, so that address is also the server name.
    pub fn new(input: NodeConfigInput<'_>) -> NodeAgentConfig {
        let host = input.host_address;
        NodeAgentConfig {
            node: input.node.to_owned(),
            cluster: input.cluster.to_owned(),
            control_plane: input.control_plane,
            host: HostEndpoints {
                enrol_endpoint: format!("{host}:{}", enrol_port_for(input.host_port)),
                endpoint: format!("{host}:{}", input.host_port),
                server_name: host.to_string(),
            },
            ca_pem: input.ca_pem.to_owned(),
            enrolment_token: input.token,
            state_dir: input.layout.state_dir.clone(),
            listen: SocketAddr::from((input.node_address, NODE_SERVICE_PORT)),
            report_interval_seconds: input.report_interval_seconds,
            buffer_capacity: input.buffer_capacity,
            root: input.layout.root.clone(),
            log_source: if input.layout.log_to_file {
                LogSource::File
            } else {
                LogSource::Journald
            },
            command_runner: if input.layout.record_commands {
                CommandRunner::Record
            } else {
                CommandRunner::Real
            },
            kubeadm: None,
        }
    }

    /// Points the node at another kubeadm (`$HOSTCTL_KUBEADM`: a stand-in
    /// for end-to-end runs, or a pinned binary). It is always run, even by a
    /// node that records its other commands, or no kubeadm files or phases
    /// would ever appear: the local provider's nodes record, and so do the
    /// Multipass emulator's machines, whose config says "real" as a VM's
    /// does.
    pub fn with_kubeadm_binary(mut self, binary: Option<&std::path::Path>) -> NodeAgentConfig {
        self.kubeadm = binary.map(|b| KubeadmBinary {
            binary: b.to_path_buf(),
            always_run: true,
        });
        self
    }

    /// The YAML text written to the node.
    pub fn to_yaml(&self) -> Result<String, RenderError> {
        serde_saphyr::to_string(self).map_err(|e| RenderError {
            node: self.node.clone(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(layout: &AgentLayout) -> NodeAgentConfig {
        NodeAgentConfig::new(NodeConfigInput {
            node: "app1-cp",
            cluster: "app1",
            control_plane: true,
            node_address: Ipv4Addr::new(192, 168, 64, 20),
            host_address: Ipv4Addr::new(192, 168, 64, 1),
            host_port: 7443,
            ca_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            token: Some("t0k3n".into()),
            report_interval_seconds: 10,
            buffer_capacity: 1000,
            layout,
        })
    }

    #[test]
    fn renders_the_documented_camel_case_shape() {
        let yaml = sample(&AgentLayout::default()).to_yaml().unwrap();
        for needle in [
            "node: app1-cp",
            "controlPlane: true",
            "enrolEndpoint: 192.168.64.1:7444",
            "endpoint: 192.168.64.1:7443",
            "serverName: \"192.168.64.1\"",
            "enrolmentToken: t0k3n",
            "stateDir: /var/lib/hostctl-agent",
            "listen: 192.168.64.20:7445",
            "reportIntervalSeconds: 10",
            "bufferCapacity: 1000",
            "root: /",
            "logSource: journald",
        ] {
            assert!(yaml.contains(needle), "{needle} missing in:\n{yaml}");
        }
    }

    #[test]
    fn local_layout_uses_the_node_root_and_file_logs() {
        let layout = AgentLayout {
            root: "/h/local/n/root".into(),
            state_dir: "/h/local/n/root/var/lib/hostctl-agent".into(),
            log_to_file: true,
            record_commands: true,
        };
        let mut config = sample(&layout);
        config.enrolment_token = None;
        let yaml = config.to_yaml().unwrap();
        assert!(yaml.contains("root: /h/local/n/root"), "{yaml}");
        assert!(yaml.contains("logSource: file"), "{yaml}");
        assert!(yaml.contains("commandRunner: record"), "{yaml}");
        assert!(!yaml.contains("enrolmentToken"), "{yaml}");
        assert!(!yaml.contains("kubeadm"), "{yaml}");
        let yaml = config
            .with_kubeadm_binary(Some(std::path::Path::new("/opt/kubeadm-standin")))
            .to_yaml()
            .unwrap();
        assert!(yaml.contains("binary: /opt/kubeadm-standin"), "{yaml}");
        assert!(yaml.contains("alwaysRun: true"), "{yaml}");
    }
}
