//! Where the object store keeps its files under `$HOSTCTL_HOME/storage`:
//! Garage's configuration and secrets beside its metadata and data
//! directories, so `storage down` stops the server and keeps the data, and
//! `--purge` knows exactly what to delete.

use std::path::{Path, PathBuf};

/// The object store's directory tree of one home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(home: &Path) -> Layout {
        Layout {
            root: home.join("storage"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `garage.toml`, rendered by [`super::config`].
    pub fn config(&self) -> PathBuf {
        self.root.join("garage.toml")
    }

    /// `garage.toml` as the container form reads it (container paths).
    pub fn container_config(&self) -> PathBuf {
        self.root.join("garage-container.toml")
    }

    /// The compose project of the container form.
    pub fn compose(&self) -> PathBuf {
        self.root.join("compose.yaml")
    }

    /// Where the S3 API answers, as `storage up` last set it, so the daemon
    /// (which knows only the home) can copy scheduled snapshots there.
    pub fn endpoint(&self) -> PathBuf {
        self.root.join("endpoint.json")
    }

    /// The RPC secret Garage reads (`rpc_secret_file`, 0600).
    pub fn rpc_secret(&self) -> PathBuf {
        self.root.join("rpc-secret")
    }

    /// The admin API's bearer token (`admin_token_file`, 0600).
    pub fn admin_token(&self) -> PathBuf {
        self.root.join("admin-token")
    }

    /// The S3 keys hostctl generated and imported (0600): one for the
    /// host's own uploads, one per cluster's Velero.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys.json")
    }

    /// Garage's metadata (LMDB).
    pub fn meta(&self) -> PathBuf {
        self.root.join("meta")
    }

    /// Garage's object blocks.
    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The server's pid while it runs as a process of the host.
    pub fn pid(&self) -> PathBuf {
        self.root.join("garage.pid")
    }

    /// The server's output (stdout and stderr) as a process of the host.
    pub fn log(&self) -> PathBuf {
        self.root.join("garage.log")
    }

    /// The directories `--purge` removes.
    pub fn data_dirs(&self) -> [PathBuf; 2] {
        [self.meta(), self.data()]
    }
}
