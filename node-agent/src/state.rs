//! The agent's private state directory: `key.pem` (0600) and `cert.pem`
//! inside a 0700 directory.
//!
//! Writes are atomic (temporary file created with its final mode, fsynced,
//! renamed, directory fsynced), so a crash or power loss during enrolment
//! leaves either the old file or the new one, and a key is never briefly
//! readable by others.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the private key.
pub const KEY_MODE: u32 = 0o600;
/// Mode of the certificate.
pub const CERT_MODE: u32 = 0o644;
/// Mode of the state directory.
pub const DIR_MODE: u32 = 0o700;

/// A filesystem failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct StateError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError {
        action,
        path,
        source,
    }
}

/// The state directory and the files in it.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Creates the directory as 0700 if needed and tightens an existing one:
    /// it holds the node's private key.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(io_err("creating directory", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_err("setting mode of", dir))?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    /// Path of the private key.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// Path of the certificate.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// Reads the key and certificate; `None` when either is missing (the
    /// agent has not enrolled yet).
    pub fn read_pair(&self) -> Result<Option<(String, String)>, StateError> {
        let (Some(key), Some(cert)) = (
            read_optional(&self.key_path())?,
            read_optional(&self.cert_path())?,
        ) else {
            return Ok(None);
        };
        Ok(Some((key, cert)))
    }

    /// Stores the private key, 0600.
    pub fn write_key(&self, key_pem: &str) -> Result<(), StateError> {
        write_atomic(&self.key_path(), key_pem.as_bytes(), KEY_MODE)
    }

    /// Stores the certificate.
    pub fn write_cert(&self, cert_pem: &str) -> Result<(), StateError> {
        write_atomic(&self.cert_path(), cert_pem.as_bytes(), CERT_MODE)
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, StateError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", path)(e)),
    }
}

/// Replaces `path` atomically with `contents`, with `mode` from the start,
/// so a crash leaves the old file or the new one and never a torn or
/// briefly over-readable file (also used for the files prerequisites write).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err("creating", &tmp))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err("setting mode of", &tmp))?;
        file.write_all(contents).map_err(io_err("writing", &tmp))?;
        file.sync_all().map_err(io_err("syncing", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("renaming into place", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing directory", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_0600_in_a_0700_dir() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let state = StateDir::open(&tmp.path().join("s"))?;
        assert_eq!(state.read_pair()?, None);
        state.write_key("k")?;
        assert_eq!(state.read_pair()?, None, "a key without cert is not a pair");
        state.write_cert("c")?;
        assert_eq!(state.read_pair()?, Some(("k".into(), "c".into())));
        let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode(&state.key_path())?, 0o600);
        assert_eq!(mode(&tmp.path().join("s"))?, 0o700);
        assert_eq!(
            fs::read_dir(tmp.path().join("s"))?.count(),
            2,
            "temp files left"
        );
        Ok(())
    }
}
