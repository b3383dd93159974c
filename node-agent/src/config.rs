//! The node agent's configuration file.
//!
//! This is the only input the agent has: the host (local provider, later
//! cloud-init) writes exactly this YAML shape with its own struct, because the
//! agents never depend on each other. The format is documented in the crate
//! README; unknown fields are refused so a typo is an error, not a default.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the configuration lives unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/hostctl/node-agent.yaml";

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Node name; must equal the CN of the certificate the host issues.
    pub node: String,
    /// Cluster the node belongs to, echoed in every response's `NodeMeta`.
    pub cluster: String,
    /// Control planes run the API server and etcd checks as well.
    #[serde(default)]
    pub control_plane: bool,
    /// How to reach and recognise the host.
    pub host: HostConfig,
    /// The agent-plane CA certificate (PEM): the only trust anchor.
    pub ca_pem: String,
    /// Single-use enrolment token; only needed while there is no valid
    /// certificate in `stateDir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_token: Option<Secret>,
    /// Holds `key.pem` (0600) and `cert.pem` in a 0700 directory.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Address the Node service listens on (mutual TLS).
    pub listen: SocketAddr,
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
    #[serde(default)]
    pub etcd: crate::etcd::EtcdSettings,
    /// How prerequisites reach the machine: `real` on VMs; `record` (a
    /// stand-in that only writes argv to `<root>/var/log/hostctl/commands.jsonl`)
    /// where the node is not a VM, so a local node never runs apt or modprobe
    /// on the developer's machine.
    #[serde(default)]
    pub command_runner: crate::prereq::CommandRunnerKind,
    /// The kubeadm binary and join retry policy (`Kubeadm` service).
    #[serde(default)]
    pub kubeadm: crate::kubeadm::KubeadmSettings,
}

/// The host's two endpoints and the name its certificate must carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostConfig {
    /// Enrolment service (server-authenticated TLS only), `host:port`.
    pub enrol_endpoint: String,
    /// Host service (mutual TLS), `host:port`.
    pub endpoint: String,
    /// DNS name or IP address the host certificate must carry.
    pub server_name: String,
}

/// Source of the `Logs` RPC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSourceKind {
    /// The systemd journal through `journalctl -o json`.
    #[default]
    Journald,
    /// The agent's own log file, for machines without a journal.
    File,
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

/// Why the configuration cannot be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not match the expected shape (the parser names the
    /// field and position).
    #[error("invalid config {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// A field parsed but its value is unusable.
    #[error("invalid config {}: field `{field}`: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        field: &'static str,
        reason: String,
    },
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates YAML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Renders the configuration as YAML (tests and tools write it this way).
    pub fn to_yaml(&self) -> Result<String, String> {
        serde_saphyr::to_string(self).map_err(|e| e.to_string())
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            field,
            reason: reason.to_owned(),
        };
        if self.node.is_empty()
            || !self
                .node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(invalid(
                "node",
                "must be a non-empty name of letters, digits, '-' and '.'",
            ));
        }
        if self.report_interval_seconds == 0 {
            return Err(invalid("reportIntervalSeconds", "must be at least 1"));
        }
        if self.buffer_capacity == 0 {
            return Err(invalid("bufferCapacity", "must be at least 1"));
        }
        if !self.ca_pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(invalid("caPem", "must hold a PEM certificate"));
        }
        for (field, value) in [
            ("host.enrolEndpoint", &self.host.enrol_endpoint),
            ("host.endpoint", &self.host.endpoint),
        ] {
            if value
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(invalid(field, "must be host:port"));
            }
        }
        if self.host.server_name.is_empty() {
            return Err(invalid("host.serverName", "must not be empty"));
        }
        if self
            .enrolment_token
            .as_ref()
            .is_some_and(|t| t.0.is_empty())
        {
            return Err(invalid("enrolmentToken", "must not be empty when given"));
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

fn default_state_dir() -> PathBuf {
    PathBuf::from(proto::contract::paths::STATE_DIR)
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
mod tests {
    use super::*;

    const GOOD: &str = r#"
node: app1-cp
cluster: app1
controlPlane: true
host:
  enrolEndpoint: 192.168.64.1:7444
  endpoint: 192.168.64.1:7443
  serverName: 192.168.64.1
caPem: |
  -----BEGIN CERTIFICATE-----
  AAAA
  -----END CERTIFICATE-----
enrolmentToken: "s3cr3t"
stateDir: /var/lib/hostctl-agent
listen: 192.168.64.20:7445
reportIntervalSeconds: 10
bufferCapacity: 1000
root: /
logSource: journald
commandRunner: record
"#;

    #[test]
    fn full_example_parses() -> Result<(), ConfigError> {
        let c = Config::parse(GOOD, Path::new("x.yaml"))?;
        assert_eq!(c.node, "app1-cp");
        assert!(c.control_plane);
        assert_eq!(c.listen.port(), 7445);
        assert_eq!(c.log_source, LogSourceKind::Journald);
        assert_eq!(c.command_runner, crate::prereq::CommandRunnerKind::Record);
        assert_eq!(
            c.enrolment_token.as_ref().map(Secret::expose),
            Some("s3cr3t")
        );
        assert!(
            !format!("{c:?}").contains("s3cr3t"),
            "token leaked into Debug"
        );
        Ok(())
    }

    #[test]
    fn round_trips_through_yaml() -> Result<(), Box<dyn std::error::Error>> {
        let c = Config::parse(GOOD, Path::new("x.yaml"))?;
        let again = Config::parse(&c.to_yaml()?, Path::new("y.yaml"))?;
        assert_eq!(again.node, c.node);
        assert_eq!(again.enrolment_token, c.enrolment_token);
        assert_eq!(again.ca_pem, c.ca_pem);
        Ok(())
    }

    #[test]
    fn unknown_field_is_named() {
        let text = GOOD.replace("bufferCapacity", "bufferCapacty");
        let err = Config::parse(&text, Path::new("/etc/x.yaml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/etc/x.yaml"), "{err}");
        assert!(err.contains("bufferCapacty"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        for (from, to, field) in [
            (
                "reportIntervalSeconds: 10",
                "reportIntervalSeconds: 0",
                "reportIntervalSeconds",
            ),
            (
                "endpoint: 192.168.64.1:7443",
                "endpoint: nowhere",
                "host.endpoint",
            ),
            ("node: app1-cp", "node: \"a b\"", "node"),
        ] {
            let err = Config::parse(&GOOD.replace(from, to), Path::new("x.yaml"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(field), "{from} -> {err}");
        }
    }

    #[test]
    fn rooted_joins_absolute_paths() {
        assert_eq!(
            rooted(Path::new("/tmp/n1"), "/etc/cni/net.d"),
            PathBuf::from("/tmp/n1/etc/cni/net.d")
        );
        assert_eq!(rooted(Path::new("/"), "/etc"), PathBuf::from("/etc"));
    }
}
