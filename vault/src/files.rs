//! The key directory (production: `$HOSTCTL_HOME/pki/vault/`, 0700): the
//! unseal key, the root token while it lives, and hostctl's admin token,
//! each 0600 and written atomically. Reads refuse a file or directory that
//! others can read, as the certs crate does for private keys.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::VaultError;
use crate::secret::Secret;

/// Mode of every secret file.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the key directory.
pub const DIR_MODE: u32 = 0o700;

/// The unseal key (Shamir 1-of-1, base64).
pub const UNSEAL_KEY: &str = "unseal.key";
/// The initial root token; removed once revoked.
pub const ROOT_TOKEN: &str = "root.token";
/// hostctl's periodic token with the `hostctl-admin` policy.
pub const ADMIN_TOKEN: &str = "admin.token";

/// The directory holding Vault's secrets.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

impl KeyDir {
    /// The directory at `dir` (not created until [`KeyDir::ensure`]).
    pub fn new(dir: impl Into<PathBuf>) -> KeyDir {
        KeyDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of `name` in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates the directory 0700 if missing and refuses one others can
    /// enter. Done before `sys/init`, so the key can always be written.
    pub fn ensure(&self) -> Result<(), VaultError> {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&self.dir)
            .map_err(fsio::Error::at("creating directory", &self.dir))?;
        let mode = fs::metadata(&self.dir)
            .map_err(fsio::Error::at("reading", &self.dir))?
            .permissions()
            .mode();
        refuse_loose(&self.dir, mode, DIR_MODE)
    }

    /// Whether `name` exists.
    pub fn exists(&self, name: &str) -> Result<bool, VaultError> {
        let path = self.file(name);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(fsio::Error::at("reading", &path)(e).into()),
        }
    }

    /// Reads `name`, or `None` if it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Secret>, VaultError> {
        let path = self.file(name);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fsio::Error::at("reading", &path)(e).into()),
        };
        refuse_loose(&path, meta.permissions().mode(), FILE_MODE)?;
        let text = fs::read_to_string(&path).map_err(fsio::Error::at("reading", &path))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(VaultError::BadFile {
                path,
                reason: "is empty: restore it from your backup".into(),
            });
        }
        Ok(Some(Secret::new(value)))
    }

    /// Writes `name` atomically with mode 0600.
    pub fn write(&self, name: &str, value: &Secret) -> Result<(), VaultError> {
        let contents = format!("{}\n", value.expose());
        fsio::write_atomic(&self.file(name), contents.as_bytes(), FILE_MODE)?;
        Ok(())
    }

    /// Removes `name` (absent is fine).
    pub fn remove(&self, name: &str) -> Result<(), VaultError> {
        let path = self.file(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(fsio::sync_dir(&self.dir)?),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(fsio::Error::at("removing", &path)(e).into()),
        }
    }

    /// Renames `name` to `name.replaced-<suffix>`, keeping a key that no
    /// longer matches this Vault (its data was wiped) for a snapshot restore.
    pub fn set_aside(&self, name: &str, suffix: &str) -> Result<Option<PathBuf>, VaultError> {
        if !self.exists(name)? {
            return Ok(None);
        }
        let to = self.file(&format!("{name}.replaced-{suffix}"));
        fsio::rename(&self.file(name), &to)?;
        Ok(Some(to))
    }
}

fn refuse_loose(path: &Path, mode: u32, want: u32) -> Result<(), VaultError> {
    let mode = mode & 0o777;
    if mode & 0o077 != 0 {
        return Err(VaultError::BadFile {
            path: path.to_path_buf(),
            reason: format!("has mode {mode:o}, readable by others: chmod {want:o} it"),
        });
    }
    Ok(())
}
