//! The node agent's configuration file: the document type both agents
//! share ([`proto::node_config`], which the host renders), read from disk
//! here with errors that name the file.
//!
//! This is the only input the agent has. Unknown fields are refused so a
//! typo is an error, not a default; the format is documented in the crate
//! README.

use std::path::{Path, PathBuf};

pub use proto::node_config::{
    CommandRunnerKind, DocumentError, EtcdSettings, HostEndpoints, KubeadmSettings, LogSourceKind,
    NodeConfig as Config, ScheduleSettings, Secret, rooted,
};

/// Where the configuration lives unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/hostctl/node-agent.yaml";

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
    /// The YAML does not match the expected shape, or a value is unusable
    /// (the message names the field and, from the parser, the position).
    #[error("invalid config {}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: DocumentError,
    },
}

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates YAML text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    Config::from_yaml(text).map_err(|source| ConfigError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_the_field() -> Result<(), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node-agent.yaml");
        let missing = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(missing.starts_with(&format!("cannot read config {}", path.display())));
        std::fs::write(&path, "node: n1\nclusterr: c\n")?;
        let unknown = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            unknown.starts_with(&format!("invalid config {}: ", path.display()))
                && unknown.contains("clusterr"),
            "{unknown}"
        );
        let text = "node: \"a b\"\ncluster: c\nhost:\n  enrolEndpoint: h:1\n  endpoint: h:2\n  \
                    serverName: h\ncaPem: x\nlisten: 127.0.0.1:1\n";
        let invalid = parse(text, Path::new("/etc/x.yaml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            invalid.starts_with("invalid config /etc/x.yaml: field `node`: "),
            "{invalid}"
        );
        Ok(())
    }
}
