//! Where the host agent keeps its state, and keeping it private. One type so
//! that no command builds a path under `$HOSTCTL_HOME` by hand.
//!
//! The home holds every cluster's CA keys, etcd snapshots (every Secret of a
//! cluster) and the report store. So: everything `hostctl` creates is
//! private from its creation ([`private_umask`]: 0700 directories, 0600
//! files, whatever the user's umask), and an existing home that other users
//! can read, or that belongs to someone else, is refused with the fix
//! ([`Home::check_private`]) — as the PKI already does for its own files.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The `$HOSTCTL_HOME` directory (default `~/.hostctl`).
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// Why a home is not used.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(
        "{} is accessible to other users (mode {mode:04o}), and it holds cluster keys and etcd snapshots; fix: chmod 700 {}",
        path.display(),
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error(
        "{} belongs to uid {owner}, not to you (uid {me}); use a home of your own (--home) or run as its owner",
        path.display()
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error("cannot inspect {}: {source}", path.display())]
    Inspect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Home {
    /// Uses `explicit` (from `--home` / `$HOSTCTL_HOME`) or `~/.hostctl`.
    pub fn resolve(explicit: Option<PathBuf>) -> Self {
        let root = explicit.unwrap_or_else(|| {
            crate::environment::standard::HOME
                .os()
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

    /// An existing home must be ours and closed to others; a missing one is
    /// fine (whoever creates it creates it private).
    pub fn check_private(&self) -> Result<(), HomeError> {
        let meta = match std::fs::metadata(&self.root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(HomeError::Inspect {
                    path: self.root.clone(),
                    source,
                });
            }
        };
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(HomeError::NotOwned {
                path: self.root.clone(),
                owner: meta.uid(),
                me,
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(HomeError::Exposed {
                path: self.root.clone(),
                mode,
            });
        }
        Ok(())
    }
}

/// Makes every file and directory this process creates private to its user
/// (umask 077): the home's files are then never, even briefly, readable by
/// others, whichever code path creates them (redb's store, a log, a
/// snapshot). Modes set explicitly afterwards (a rendered file for review)
/// still apply.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_home_is_refused_with_the_fix_and_a_closed_one_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::resolve(Some(dir.path().join("h")));
        assert!(home.check_private().is_ok(), "a missing home is fine");
        std::fs::create_dir(home.root()).unwrap();
        std::fs::set_permissions(home.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = home.check_private().unwrap_err().to_string();
        assert!(
            err.contains("mode 0755") && err.contains("chmod 700"),
            "{err}"
        );
        std::fs::set_permissions(home.root(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(home.check_private().is_ok());
    }
}
