//! Files on disk: atomic writes with the final mode, and reads that refuse
//! secrets other users could read.
//!
//! A write goes to a temporary file in the same directory, created with its
//! final mode, is fsynced, renamed over the final name, and the directory is
//! fsynced. A crash therefore leaves either the old file or the new one under
//! the final name, never half of one, and a key is never briefly world-readable.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use crate::error::{PkiError, io_err};

/// Mode of private keys and other secrets.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificates and public keys.
pub const CERT_MODE: u32 = 0o644;
/// Mode of every directory under `pki/`.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and parents) as 0700 if missing, and refuses an existing
/// directory that group or others can enter, since it would expose key names
/// and, with a loose key mode, key contents.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PkiError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io_err("creating directory", dir))?;
    check_private_dir(dir)
}

/// Refuses a directory with group/other permission bits.
pub fn check_private_dir(dir: &Path) -> Result<(), PkiError> {
    let meta = fs::metadata(dir).map_err(io_err("reading", dir))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PkiError::Permissions {
            path: dir.to_path_buf(),
            mode,
            want: DIR_MODE,
        });
    }
    Ok(())
}

/// Whether `path` exists (a dangling symlink counts as existing, so that it
/// is reported rather than silently replaced).
pub fn exists(path: &Path) -> Result<bool, PkiError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("reading", path)(e)),
    }
}

/// Reads a secret file after checking that only its owner can read it.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, PkiError> {
    let meta = fs::metadata(path).map_err(io_err("reading", path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PkiError::Permissions {
            path: path.to_path_buf(),
            mode,
            want: KEY_MODE,
        });
    }
    fs::read(path).map_err(io_err("reading", path))
}

/// Reads a public file (certificate, public key).
pub fn read_public(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(io_err("reading", path))
}

/// Replaces `path` atomically with `contents`, giving it `mode` from the
/// start ([`fsio::write_atomic`]; its failures keep their step and file).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    fsio::write_atomic(path, contents, mode).map_err(|e| io_err(e.action, e.path)(e.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_leaves_no_temp_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("k.key");
        write_atomic(&path, b"one", KEY_MODE)?;
        write_atomic(&path, b"two", KEY_MODE)?;
        assert_eq!(fs::read(&path)?, b"two");
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names.len(), 1, "temp file left behind: {names:?}");
        Ok(())
    }

    #[test]
    fn secret_with_group_bits_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("k.key");
        write_atomic(&path, b"x", 0o640)?;
        match read_secret(&path) {
            Err(PkiError::Permissions { mode, want, .. }) => {
                assert_eq!((mode, want), (0o640, 0o600));
            }
            other => panic!("expected Permissions, got {other:?}"),
        }
        Ok(())
    }
}
