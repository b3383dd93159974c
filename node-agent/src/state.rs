//! The agent's private state directory: `key.pem` (0600) and `cert.pem`
//! inside a 0700 directory, plus `token.sha256` (the digest of the token
//! this agent enrolled with, never the token).
//!
//! Writes are atomic (temporary file created with its final mode, fsynced,
//! renamed, directory fsynced), so a crash or power loss during enrolment
//! leaves either the old file or the new one, and a key is never briefly
//! readable by others.
//!
//! A renewal replaces *both* files, and two renames are not one: it first
//! stages the new pair completely as `key.pem.next` + `cert.pem.next`
//! (each written atomically), then renames them into place. Whatever point
//! a crash hits, one of the two candidates [`StateDir::candidates`] returns
//! — the installed pair, or the staged files completed by whichever
//! installed file they have not replaced yet — is a complete pair; the
//! caller keeps the first that checks and [`StateDir::settle`]s the
//! directory accordingly.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
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

impl From<fsio::Error> for StateError {
    fn from(e: fsio::Error) -> Self {
        StateError {
            action: e.action,
            path: e.path,
            source: e.source,
        }
    }
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

    fn staged_key_path(&self) -> PathBuf {
        self.dir.join("key.pem.next")
    }

    fn staged_cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem.next")
    }

    fn token_digest_path(&self) -> PathBuf {
        self.dir.join("token.sha256")
    }

    /// The directory itself, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// Replaces key and certificate together (renewal): staged, then
    /// renamed into place, so a crash at any point leaves a complete pair
    /// that [`StateDir::candidates`] finds (module docs).
    pub fn write_pair(&self, key_pem: &str, cert_pem: &str) -> Result<(), StateError> {
        write_atomic(&self.staged_key_path(), key_pem.as_bytes(), KEY_MODE)?;
        write_atomic(&self.staged_cert_path(), cert_pem.as_bytes(), CERT_MODE)?;
        self.install_staged()
    }

    /// Renames whatever is staged into place, key first, then syncs the
    /// directory.
    fn install_staged(&self) -> Result<(), StateError> {
        for (staged, installed) in [
            (self.staged_key_path(), self.key_path()),
            (self.staged_cert_path(), self.cert_path()),
        ] {
            if staged.exists() {
                fs::rename(&staged, &installed)
                    .map_err(io_err("renaming into place", &installed))?;
            }
        }
        sync_dir(&self.dir)
    }

    /// The pairs that may be this node's identity, best first: the
    /// installed one, then — only if a renewal was interrupted — the staged
    /// files, each missing half taken from the installed pair.
    pub fn candidates(&self) -> Result<Vec<StoredPair>, StateError> {
        let key = read_optional(&self.key_path())?;
        let cert = read_optional(&self.cert_path())?;
        let staged_key = read_optional(&self.staged_key_path())?;
        let staged_cert = read_optional(&self.staged_cert_path())?;
        let mut out = Vec::new();
        if let (Some(key), Some(cert)) = (&key, &cert) {
            out.push(StoredPair {
                key_pem: key.clone(),
                cert_pem: cert.clone(),
                staged: false,
            });
        }
        let interrupted = staged_key.is_some() || staged_cert.is_some();
        if interrupted && let (Some(key), Some(cert)) = (staged_key.or(key), staged_cert.or(cert)) {
            out.push(StoredPair {
                key_pem: key,
                cert_pem: cert,
                staged: true,
            });
        }
        Ok(out)
    }

    /// Makes the directory hold `chosen` (one of [`StateDir::candidates`])
    /// as its installed pair and nothing staged: a staged pair is renamed
    /// into place, an unused one removed.
    pub fn settle(&self, chosen: &StoredPair) -> Result<(), StateError> {
        if chosen.staged {
            return self.install_staged();
        }
        for staged in [self.staged_key_path(), self.staged_cert_path()] {
            match fs::remove_file(&staged) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing", &staged)(e)),
            }
        }
        Ok(())
    }

    /// Records the digest of the token this agent enrolled with, so a
    /// later start never sends the spent token again (0600: it is not the
    /// token, but nobody else needs it).
    pub fn write_token_digest(&self, digest: &str) -> Result<(), StateError> {
        write_atomic(&self.token_digest_path(), digest.as_bytes(), KEY_MODE)
    }

    /// The digest recorded at enrolment, if any (agents enrolled before it
    /// was recorded have none).
    pub fn token_digest(&self) -> Result<Option<String>, StateError> {
        Ok(read_optional(&self.token_digest_path())?.map(|s| s.trim().to_owned()))
    }
}

/// A key and certificate read from the state directory, not yet checked.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPair {
    pub key_pem: String,
    pub cert_pem: String,
    /// Whether it comes from an interrupted renewal's staged files.
    pub staged: bool,
}

impl std::fmt::Debug for StoredPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPair")
            .field("staged", &self.staged)
            .finish_non_exhaustive()
    }
}

fn sync_dir(dir: &Path) -> Result<(), StateError> {
    Ok(fsio::sync_dir(dir)?)
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
    Ok(fsio::write_atomic(path, contents, mode)?)
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

    fn pairs(state: &StateDir) -> Result<Vec<(String, String, bool)>, StateError> {
        Ok(state
            .candidates()?
            .into_iter()
            .map(|p| (p.key_pem, p.cert_pem, p.staged))
            .collect())
    }

    /// Every crash point of a renewal leaves a complete pair among the
    /// candidates: old before the staging is complete, new after.
    #[test]
    fn an_interrupted_renewal_leaves_the_old_or_the_new_pair()
    -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let state = StateDir::open(&tmp.path().join("s"))?;
        let (old, new) = (("k1", "c1"), ("k2", "c2"));
        let install_old = || -> Result<(), StateError> {
            state.settle(&StoredPair {
                key_pem: String::new(),
                cert_pem: String::new(),
                staged: false,
            })?;
            state.write_key(old.0)?;
            state.write_cert(old.1)
        };
        let complete = |p: (&str, &str), staged| (p.0.to_owned(), p.1.to_owned(), staged);

        // Crash after staging the key only: the old pair, nothing complete
        // besides (the staged key with the old certificate does not match,
        // which the caller's check finds).
        install_old()?;
        write_atomic(&state.staged_key_path(), new.0.as_bytes(), KEY_MODE)?;
        assert_eq!(pairs(&state)?[0], complete(old, false));

        // Crash after staging both: old installed, new staged.
        write_atomic(&state.staged_cert_path(), new.1.as_bytes(), CERT_MODE)?;
        assert_eq!(pairs(&state)?, [complete(old, false), complete(new, true)]);

        // Crash after the key's rename: the installed pair is mixed, the
        // staged certificate completes the new key.
        fs::rename(state.staged_key_path(), state.key_path())?;
        let found = pairs(&state)?;
        assert_eq!(found[1], complete(new, true));
        state.settle(&state.candidates()?[1])?;
        assert_eq!(pairs(&state)?, [complete(new, false)]);
        assert_eq!(fs::read_dir(tmp.path().join("s"))?.count(), 2);

        // A finished write_pair: only the new pair.
        install_old()?;
        state.write_pair(new.0, new.1)?;
        assert_eq!(pairs(&state)?, [complete(new, false)]);
        let mode = fs::metadata(state.key_path())?.permissions().mode() & 0o777;
        assert_eq!(mode, KEY_MODE);
        Ok(())
    }
}
