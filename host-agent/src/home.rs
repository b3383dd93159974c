//! Where the host agent keeps its state. One type so that no command builds
//! a path under `$HOSTCTL_HOME` by hand.

use std::path::{Path, PathBuf};

/// The `$HOSTCTL_HOME` directory (default `~/.hostctl`).
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Uses `explicit` (from `--home` / `$HOSTCTL_HOME`) or `~/.hostctl`.
    pub fn resolve(explicit: Option<PathBuf>) -> Self {
        let root = explicit.unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".hostctl")
        });
        Home { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The PKI directory owned by the `certs` crate.
    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }
}
