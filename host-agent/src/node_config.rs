//! The node agent's configuration file as the host writes it: the shared
//! document type ([`proto::node_config::NodeConfig`], which the node agent
//! parses) built from the topology's facts and the provider's layout. One
//! type for both sides, so the host cannot write a field the node does not
//! read; the agents still never depend on each other.

use crate::agent_plane::{NODE_METRICS_PORT, NODE_SERVICE_PORT, enrol_port_for};
use crate::provider::AgentLayout;
use proto::node_config::{
    CommandRunnerKind, HostEndpoints, KubeadmSettings, LogSourceKind, NodeConfig, Secret,
};
use std::net::{Ipv4Addr, SocketAddr};

/// The file `node-agent --config` reads, as the host renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAgentConfig {
    /// The document itself; callers may adjust it before rendering (the
    /// soak test points a node at ports chosen by the daemon).
    pub document: NodeConfig,
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
#[error("cannot render the node agent config for {node}: {source}")]
pub struct RenderError {
    pub node: String,
    #[source]
    pub source: serde_saphyr::SerializeError,
}

impl NodeAgentConfig {
    /// Assembles the configuration; the host certificate carries the host
    /// address as an IP SAN, so that address is also the server name. What
    /// the host leaves to the node's defaults (the `etcd:` section, the
    /// kubeadm binary) is not written.
    pub fn new(input: NodeConfigInput<'_>) -> NodeAgentConfig {
        let host = input.host_address;
        let document = NodeConfig {
            node: input.node.to_owned(),
            cluster: input.cluster.to_owned(),
            control_plane: input.control_plane,
            host: HostEndpoints {
                enrol_endpoint: format!("{host}:{}", enrol_port_for(input.host_port)),
                endpoint: format!("{host}:{}", input.host_port),
                server_name: host.to_string(),
            },
            ca_pem: input.ca_pem.to_owned(),
            enrolment_token: input.token.map(Secret::new),
            state_dir: input.layout.state_dir.clone(),
            listen: SocketAddr::from((input.node_address, NODE_SERVICE_PORT)),
            // mgmt's Prometheus scrapes every node here (hostctl-metrics).
            metrics_listen: Some(SocketAddr::from((input.node_address, NODE_METRICS_PORT))),
            report_interval_seconds: input.report_interval_seconds,
            buffer_capacity: usize::try_from(input.buffer_capacity).unwrap_or(usize::MAX),
            root: input.layout.root.clone(),
            log_source: if input.layout.log_to_file {
                LogSourceKind::File
            } else {
                LogSourceKind::Journald
            },
            etcd: Default::default(),
            command_runner: if input.layout.record_commands {
                CommandRunnerKind::Record
            } else {
                CommandRunnerKind::Real
            },
            kubeadm: KubeadmSettings::default(),
        };
        NodeAgentConfig { document }
    }

    /// Points the node at another kubeadm (`$HOSTCTL_KUBEADM`: a stand-in
    /// for end-to-end runs, or a pinned binary). It is always run, even by a
    /// node that records its other commands, or no kubeadm files or phases
    /// would ever appear: the local provider's nodes record, and so do the
    /// Multipass emulator's machines, whose config says "real" as a VM's
    /// does.
    pub fn with_kubeadm_binary(mut self, binary: Option<&std::path::Path>) -> NodeAgentConfig {
        self.document.kubeadm = binary.map_or_else(KubeadmSettings::default, |b| {
            KubeadmSettings::always_running(b.to_path_buf())
        });
        self
    }

    /// The YAML text written to the node.
    pub fn to_yaml(&self) -> Result<String, RenderError> {
        self.document.to_yaml().map_err(|source| RenderError {
            node: self.document.node.clone(),
            source,
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
        config.document.enrolment_token = None;
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
