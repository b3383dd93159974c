//! The object store's secrets, generated once by hostctl and kept 0600
//! under `$HOSTCTL_HOME/storage`: Garage's RPC secret and admin token (read
//! by Garage from files, never put on a command line), and the S3 keys.
//!
//! The keys are generated here and *imported* into Garage (`ImportKey`)
//! rather than created by it, so they outlive Garage's metadata: a store
//! rebuilt from nothing gets the very keys the clusters' Velero already
//! holds, and no cluster has to be touched.

use super::error::StorageError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// `n` random bytes as lowercase hex, from the kernel's generator.
pub fn random_hex(n: usize) -> Result<String, StorageError> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(StorageError::io("/dev/urandom"))?;
    Ok(hex::encode(bytes))
}

/// One S3 access key. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Key {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for S3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Key")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl S3Key {
    /// Garage's own shape (`GK` + 24 hex digits, a 64-digit secret), so
    /// imported keys look like the ones it creates.
    pub fn generate() -> Result<S3Key, StorageError> {
        Ok(S3Key {
            access_key_id: format!("GK{}", random_hex(12)?),
            secret_access_key: random_hex(32)?,
        })
    }
}

/// The keys by name (see [`super::plan`]) and each cluster's Kopia
/// repository password (Velero's `velero-repo-credentials`), in
/// `keys.json`. `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    pub keys: BTreeMap<String, S3Key>,
    #[serde(default, rename = "repositoryPasswords")]
    repository_passwords: BTreeMap<String, String>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("keys", &self.keys)
            .field("repository_passwords", &self.repository_passwords.keys())
            .finish()
    }
}

impl Keys {
    /// The file's keys, or none when it does not exist yet.
    pub fn load(path: &Path) -> Result<Keys, StorageError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::Config {
                what: path.display().to_string(),
                reason: format!(
                    "{e}; restore it from a backup (the clusters' Velero use these keys)"
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keys::default()),
            Err(e) => Err(StorageError::io(path)(e)),
        }
    }

    /// The named key, generated (and the file rewritten, 0600) if new.
    pub fn ensure(&mut self, path: &Path, name: &str) -> Result<S3Key, StorageError> {
        if let Some(key) = self.keys.get(name) {
            return Ok(key.clone());
        }
        let key = S3Key::generate()?;
        self.keys.insert(name.to_owned(), key.clone());
        fsio::write_json_atomic(path, self, 0o600)?;
        Ok(key)
    }

    /// The cluster's repository password, generated (and the file
    /// rewritten, 0600) if new. Never changed once made: Kopia keeps the
    /// password a repository was created with.
    pub fn ensure_repository_password(
        &mut self,
        path: &Path,
        cluster: &str,
    ) -> Result<(), StorageError> {
        if !self.repository_passwords.contains_key(cluster) {
            self.repository_passwords
                .insert(cluster.to_owned(), random_hex(32)?);
            fsio::write_json_atomic(path, self, 0o600)?;
        }
        Ok(())
    }

    pub fn repository_password(&self, cluster: &str) -> Result<String, StorageError> {
        self.repository_passwords
            .get(cluster)
            .cloned()
            .ok_or_else(|| StorageError::NoKey(format!("the repository password of {cluster}")))
    }

    pub fn get(&self, name: &str) -> Result<&S3Key, StorageError> {
        self.keys
            .get(name)
            .ok_or_else(|| StorageError::NoKey(name.to_owned()))
    }
}

/// A secret file's contents, generated (0600) on first use and kept.
pub fn ensure_secret_file(path: &Path, bytes: usize) -> Result<String, StorageError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh = random_hex(bytes)?;
            fsio::write_atomic(path, fresh.as_bytes(), 0o600)?;
            Ok(fresh)
        }
        Err(e) => Err(StorageError::io(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_generated_once_kept_private_and_never_debug_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let mut keys = Keys::load(&path).unwrap();
        let first = keys.ensure(&path, "velero-app1").unwrap();
        assert!(first.access_key_id.starts_with("GK") && first.access_key_id.len() == 26);
        assert_eq!(first.secret_access_key.len(), 64);
        let again = Keys::load(&path)
            .unwrap()
            .ensure(&path, "velero-app1")
            .unwrap();
        assert_eq!(first, again);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!format!("{first:?}").contains(&first.secret_access_key));
    }

    #[test]
    fn a_damaged_keys_file_is_refused_with_its_path_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = Keys::load(&path).unwrap_err().to_string();
        assert!(err.contains("keys.json"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
    }
}
