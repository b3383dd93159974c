//! The host renders the node agent's config with its own struct; the node
//! agent parses it with its own, refusing unknown fields. This keeps the two
//! copies of the format in step (no root needed).

use host_agent::node_config::{NodeAgentConfig, NodeConfigInput};
use host_agent::provider::AgentLayout;
use node_agent::config::{Config, LogSourceKind};
use node_agent::prereq::CommandRunnerKind;
use std::net::Ipv4Addr;
use std::path::Path;

fn render(layout: &AgentLayout, token: Option<&str>) -> String {
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
    .to_yaml()
    .expect("render")
}

#[test]
fn the_node_agent_reads_what_the_host_writes() {
    let layout = AgentLayout {
        root: "/h/local/app1-cp/root".into(),
        state_dir: "/h/local/app1-cp/root/var/lib/hostctl-agent".into(),
        log_to_file: true,
        record_commands: true,
    };
    let yaml = render(&layout, Some("hct1.abcdefgh.secret"));
    let c = Config::parse(&yaml, Path::new("node-agent.yaml")).expect("node agent parses it");
    assert_eq!(c.node, "app1-cp");
    assert_eq!(c.cluster, "app1");
    assert!(c.control_plane);
    assert_eq!(c.host.enrol_endpoint, "10.251.7.1:7444");
    assert_eq!(c.host.endpoint, "10.251.7.1:7443");
    assert_eq!(c.host.server_name, "10.251.7.1");
    assert_eq!(c.listen.to_string(), "10.251.7.20:7445");
    assert_eq!(c.report_interval_seconds, 1);
    assert_eq!(c.buffer_capacity, 1000);
    assert_eq!(c.root, layout.root);
    assert_eq!(c.state_dir, layout.state_dir);
    assert_eq!(c.log_source, LogSourceKind::File);
    assert_eq!(c.command_runner, CommandRunnerKind::Record);
    assert_eq!(
        c.enrolment_token.as_ref().map(|t| t.expose()),
        Some("hct1.abcdefgh.secret")
    );
}

#[test]
fn system_layout_and_no_token_parse_too() {
    let yaml = render(&AgentLayout::default(), None);
    let c = Config::parse(&yaml, Path::new("node-agent.yaml")).expect("node agent parses it");
    assert_eq!(c.log_source, LogSourceKind::Journald);
    assert_eq!(c.command_runner, CommandRunnerKind::Real);
    assert_eq!(c.root, Path::new("/"));
    assert!(c.enrolment_token.is_none());
}

#[test]
fn a_kubeadm_binary_set_by_the_host_parses_and_runs_under_record() {
    let layout = AgentLayout {
        root: "/h/local/app1-cp/root".into(),
        state_dir: "/h/local/app1-cp/root/var/lib/hostctl-agent".into(),
        log_to_file: true,
        record_commands: true,
    };
    let yaml = NodeAgentConfig::new(NodeConfigInput {
        node: "app1-cp",
        cluster: "app1",
        control_plane: true,
        node_address: Ipv4Addr::new(10, 251, 7, 20),
        host_address: Ipv4Addr::new(10, 251, 7, 1),
        host_port: 7443,
        ca_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        token: None,
        report_interval_seconds: 1,
        buffer_capacity: 1000,
        layout: &layout,
    })
    .with_kubeadm_binary(Some(Path::new("/opt/stand-ins/kubeadm")))
    .to_yaml()
    .expect("render");
    let c = Config::parse(&yaml, Path::new("node-agent.yaml")).expect("node agent parses it");
    assert_eq!(c.kubeadm.binary, Path::new("/opt/stand-ins/kubeadm"));
    assert!(c.kubeadm.always_run);
    assert_eq!(c.kubeadm.join_attempts, 5, "defaults kept");
}
