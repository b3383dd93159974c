//! The node agent's configuration file (`/etc/hostctl/node-agent.yaml`):
//! one document type that the host renders and the node parses (issue 15,
//! item 2).
//!
//! It lives here, beside [`crate::contract`], for the same reason: two
//! copies of a format kept equal by a test can still drift where the test
//! does not look, one type cannot. The host builds a [`NodeConfig`] and
//! writes [`NodeConfig::to_yaml`]; the node reads it with
//! [`NodeConfig::from_yaml`], which refuses unknown fields (a typo is an
//! error, not a default) and values the agent cannot use. The agents still
//! never depend on each other. The format is documented in the node
//! agent's README.

mod sections;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use sections::{EtcdSettings, KubeadmSettings, ScheduleSettings};

/// The whole configuration file. Field order is the file's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeConfig {
    /// Node name; must equal the CN of the certificate the host issues.
    pub node: String,
    /// Cluster the node belongs to, echoed in every response's `NodeMeta`.
    pub cluster: String,
    /// Control planes run the API server and etcd checks as well.
    #[serde(default)]
    pub control_plane: bool,
    /// How to reach and recognise the host.
    pub host: HostEndpoints,
    /// The agent-plane CA certificate (PEM): the only trust anchor.
    pub ca_pem: String,
    /// Single-use enrolment token; only needed while there is no valid
    /// certificate in `stateDir` (the host leaves it out afterwards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_token: Option<Secret>,
    /// Holds `key.pem` (0600) and `cert.pem` in a 0700 directory.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Address the Node service listens on (mutual TLS).
    pub listen: SocketAddr,
    /// Address of the mutual-TLS `GET /metrics` endpoint (mgmt's
    /// Prometheus; port [`crate::contract::ports::NODE_METRICS`]); absent
    /// serves none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds between health reports (± 10 % jitter).
    #[serde(default = "default_interval")]
    pub report_interval_seconds: u32,
    /// Reports kept while the host is unreachable; older ones are dropped.
    #[serde(default = "default_capacity")]
    pub buffer_capacity: usize,
    /// Prefix for every probed path, so several agents can share one machine
    /// in the local provider, each with its own root directory.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Where `Logs` reads from.
    #[serde(default)]
    pub log_source: LogSourceKind,
    /// etcd endpoint and snapshot schedule (used on control-plane nodes).
    #[serde(default, skip_serializing_if = "is_default")]
    pub etcd: EtcdSettings,
    /// How the agent's operations reach the machine: `real` on VMs;
    /// `record` (a stand-in that only writes argv to
    /// `<root>/var/log/hostctl/commands.jsonl`) where the node is not a VM,
    /// so a local node never runs apt or modprobe on the developer's
    /// machine.
    #[serde(default)]
    pub command_runner: CommandRunnerKind,
    /// The kubeadm binary and join retry policy (`Kubeadm` service).
    #[serde(default, skip_serializing_if = "is_default")]
    pub kubeadm: KubeadmSettings,
}

/// The host's two endpoints and the name its certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostEndpoints {
    /// Enrolment service (server-authenticated TLS only), `host:port`.
    pub enrol_endpoint: String,
    /// Host service (mutual TLS), `host:port`.
    pub endpoint: String,
    /// DNS name or IP address the host certificate must carry.
    pub server_name: String,
}

/// `logSource`: where the `Logs` RPC reads from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSourceKind {
    /// The systemd journal through `journalctl -o json`.
    #[default]
    Journald,
    /// The agent's own log file, for machines without a journal (the
    /// local provider's nodes are plain processes).
    File,
}

/// `commandRunner`: how the agent runs the commands of its operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandRunnerKind {
    /// Run commands and downloads for real (VMs).
    #[default]
    Real,
    /// Record them to `<root>/var/log/hostctl/commands.jsonl` and run
    /// nothing: a node that shares the host's kernel (the local provider).
    Record,
}

/// A string that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a configuration text is not a usable configuration. The message
/// names the field (and, for the parser's errors, the position), never the
/// file: the reader of the file adds its path.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The YAML does not match the expected shape (the parser names the
    /// field and position). Boxed: the parser's error is large, and this
    /// one travels in every `Result` of loading a configuration.
    #[error(transparent)]
    Parse(Box<serde_saphyr::Error>),
    /// A field parsed but its value is unusable.
    #[error("field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl NodeConfig {
    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<NodeConfig, DocumentError> {
        let config: NodeConfig =
            serde_saphyr::from_str(text).map_err(|e| DocumentError::Parse(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// The YAML text written to the node (the host) or by tests and tools.
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::SerializeError> {
        serde_saphyr::to_string(self)
    }

    /// Refuses values the agent cannot use, naming the field.
    pub fn validate(&self) -> Result<(), DocumentError> {
        let invalid = |field: &'static str, reason: &str| {
            Err(DocumentError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.node.is_empty()
            || !self
                .node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return invalid(
                "node",
                "must be a non-empty name of letters, digits, '-' and '.'",
            );
        }
        if self.report_interval_seconds == 0 {
            return invalid("reportIntervalSeconds", "must be at least 1");
        }
        if self.buffer_capacity == 0 {
            return invalid("bufferCapacity", "must be at least 1");
        }
        if !self.ca_pem.contains("-----BEGIN CERTIFICATE-----") {
            return invalid("caPem", "must hold a PEM certificate");
        }
        for (field, value) in [
            ("host.enrolEndpoint", &self.host.enrol_endpoint),
            ("host.endpoint", &self.host.endpoint),
        ] {
            if value
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return invalid(field, "must be host:port");
            }
        }
        if self.host.server_name.is_empty() {
            return invalid("host.serverName", "must not be empty");
        }
        if self
            .enrolment_token
            .as_ref()
            .is_some_and(|t| t.expose().is_empty())
        {
            return invalid("enrolmentToken", "must not be empty when given");
        }
        Ok(())
    }

    /// `rel` (an absolute path such as `/etc/kubernetes/pki`) under `root`.
    pub fn rooted(&self, rel: &str) -> PathBuf {
        rooted(&self.root, rel)
    }
}

/// Joins an absolute path under a root prefix.
pub fn rooted(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(crate::contract::paths::STATE_DIR)
}

fn default_interval() -> u32 {
    10
}

fn default_capacity() -> usize {
    1000
}

fn default_root() -> PathBuf {
    PathBuf::from("/")
}

#[cfg(test)]
mod tests;
