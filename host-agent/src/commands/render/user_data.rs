//! `DIR/nodes/<node>/user-data` for every node: what a Multipass machine
//! boots with, minus the enrolment token (issued at launch, shown as a
//! placeholder). The node-agent binary is embedded only when given
//! (`--node-agent-bin`): review does not need megabytes of base64, and a
//! debug build would not fit Multipass's limit anyway. Otherwise the payload
//! is a clearly marked placeholder, and a note says so.

use crate::node_config::{NodeAgentConfig, NodeConfigInput};
use crate::orchestrator::steps::userdata::{self, TOKEN_PLACEHOLDER};
use crate::provider::AgentLayout;
use std::path::{Path, PathBuf};
use topology::{NodeRole, Resolved};

/// Used when no PKI exists yet (rendering never creates one).
const CA_PLACEHOLDER: &str = "# PLACEHOLDER: no PKI yet; `hostctl up` creates it\n";

/// Writes every node's user-data; returns the paths written.
pub fn write_all(
    resolved: &Resolved,
    ca_pem: Option<&str>,
    node_agent: Option<&Path>,
    out: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let payload = match node_agent {
        Some(path) => userdata::load_payload(path)?,
        None => {
            eprintln!(
                "note: user-data carries a PLACEHOLDER for the node-agent binary; pass --node-agent-bin (e.g. target/node-dist/node-agent from `make node-agent-dist`) to embed the real one"
            );
            userdata::placeholder_payload()?
        }
    };
    let layout = AgentLayout::default();
    let mut written = Vec::new();
    for node in resolved.topology().nodes() {
        let Some(address) = resolved.node_ip(&node.name) else {
            continue;
        };
        let config = NodeAgentConfig::new(NodeConfigInput {
            node: &node.name,
            cluster: &node.cluster,
            control_plane: node.role == NodeRole::ControlPlane,
            node_address: address,
            host_address: resolved.host_agent_address(),
            host_port: resolved.host_agent_port(),
            ca_pem: ca_pem.unwrap_or(CA_PLACEHOLDER),
            token: Some(TOKEN_PLACEHOLDER.to_owned()),
            report_interval_seconds: crate::agent_plane::DEFAULT_REPORT_INTERVAL
                .as_secs()
                .try_into()
                .unwrap_or(10),
            buffer_capacity: 1000,
            layout: &layout,
        })
        .to_yaml()?;
        // Multipass's user-data (the product's target): the address beside
        // the default NIC's lease.
        let pinned = ipnet::Ipv4Net::new(address, resolved.subnet().prefix_len())
            .ok()
            .map(crate::provider::multipass::default_nic_address);
        let text = userdata::render(&node.name, &payload, &config, pinned)?;
        let path = out.join("nodes").join(&node.name).join("user-data");
        crate::fsutil::write_atomic(&path, text.as_bytes(), 0o600)?;
        written.push(path);
    }
    Ok(written)
}
