//! Where the managed mirrors keep their files under `$HOSTCTL_HOME/mirrors`:
//! one directory per compose project (the rendered files, Harbor's
//! generated configuration) and its data beside it, so `mirrors down`
//! can remove the containers and keep the data, and `--purge` knows
//! exactly what to delete.

use std::path::{Path, PathBuf};

/// The mirrors' directory tree of one home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(home: &Path) -> Layout {
        Layout {
            root: home.join("mirrors"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Harbor's compose project: `compose.yaml`, `harbor.yml`, the TLS
    /// pair and `common/config/` (written by Harbor's `prepare`).
    pub fn harbor(&self) -> PathBuf {
        self.root.join("harbor")
    }

    /// Harbor's `data_volume`: registry blobs, database, redis, secrets.
    pub fn harbor_data(&self) -> PathBuf {
        self.root.join("harbor-data")
    }

    /// Nexus's compose project.
    pub fn nexus(&self) -> PathBuf {
        self.root.join("nexus")
    }

    /// `/nexus-data`: repositories, blobs and `admin.password`.
    pub fn nexus_data(&self) -> PathBuf {
        self.root.join("nexus-data")
    }

    /// The generated admin credentials (0600).
    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials.json")
    }

    /// Harbor's admin credentials for helm (`--registry-config`, docker
    /// `config.json` format, 0600): charts are pushed as the admin.
    pub fn helm_registry_config(&self) -> PathBuf {
        self.root.join("helm-registry.json")
    }

    /// The directories `--purge` removes (everything the mirrors own).
    pub fn data_dirs(&self) -> [PathBuf; 2] {
        [self.harbor_data(), self.nexus_data()]
    }
}
