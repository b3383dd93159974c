//! The host and the node agent share one type for the node agent's
//! configuration (`proto::node_config::NodeConfig`). What remains to check
//! is the file between them: the host's rendering, read back by the node
//! agent's own loader (which refuses unknown fields and unusable values),
//! is the document the host built — including the defaults the host leaves
//! out of the text (no root needed).

use host_agent::node_config::{NodeAgentConfig, NodeConfigInput};
use host_agent::provider::AgentLayout;
use node_agent::config;
use std::net::Ipv4Addr;
use std::path::Path;

fn local_layout() -> AgentLayout {
    AgentLayout {
        root: "/h/local/app1-cp/root".into(),
        state_dir: "/h/local/app1-cp/root/var/lib/hostctl-agent".into(),
        log_to_file: true,
        record_commands: true,
    }
}

fn rendered(layout: &AgentLayout, token: Option<&str>, kubeadm: Option<&str>) -> NodeAgentConfig {
    NodeAgentConfig::new(NodeConfigInput {
        node: "app1-cp",
        cluster: "app1",
        control_plane: true,
        node_address: Ipv4Addr::new(10, 251, 7, 20),
        host_address: Ipv4Addr::new(10, 251, 7, 1),
        host_port: 7443,
        ca_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        token: token.map(str::to_owned),
        report_interval_seconds: 1,
        buffer_capacity: 1000,
        layout,
    })
    .with_kubeadm_binary(kubeadm.map(Path::new))
}

#[test]
fn the_node_agent_reads_back_what_the_host_built() {
    let local = local_layout();
    let system = AgentLayout::default();
    for (layout, token, kubeadm) in [
        (&local, Some("hct1.abcdefgh.secret"), None),
        (&system, None, None),
        (&local, None, Some("/opt/stand-ins/kubeadm")),
    ] {
        let host = rendered(layout, token, kubeadm);
        let yaml = host.to_yaml().expect("render");
        let node =
            config::parse(&yaml, Path::new("node-agent.yaml")).expect("node agent parses it");
        assert_eq!(node, host.document, "{yaml}");
    }
}

#[test]
fn what_the_host_leaves_out_is_the_node_agents_default() {
    let host = rendered(&local_layout(), None, Some("/opt/stand-ins/kubeadm"));
    let yaml = host.to_yaml().expect("render");
    assert!(
        !yaml.contains("etcd") && !yaml.contains("joinAttempts"),
        "{yaml}"
    );
    let node = config::parse(&yaml, Path::new("node-agent.yaml")).expect("node agent parses it");
    assert_eq!(node.etcd, config::EtcdSettings::default());
    assert!(node.kubeadm.always_run, "the stand-in runs under record");
    assert_eq!(node.kubeadm.join_attempts, 5, "defaults kept");
}
