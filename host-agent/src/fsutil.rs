//! Crash-safe file writes for everything the host agent renders or records:
//! a reader sees the old file or the new one, never half of either.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs;
use std::path::{Path, PathBuf};

/// A write that could not be completed; the target is left as it was.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes `contents` to `path` with `mode` through [`fsio::write_atomic`]
/// (temporary file in the same directory, fsync, rename, directory sync).
/// Parent directories are created. The error names `path` itself, the file
/// the user knows, whichever step failed.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), WriteError> {
    let err = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(err)?;
    }
    fsio::write_atomic(path, contents, mode).map_err(|e| err(e.source))
}

/// Why a JSON state file could not be loaded or saved. Each owner converts
/// it into its own error, whose message says what the file is and what to
/// do when it is damaged.
#[derive(Debug, thiserror::Error)]
pub enum JsonFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid ({source})", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The value has no JSON form (e.g. a path that is not UTF-8).
    #[error("cannot write {}: {source}", path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Reads the JSON file at `path`; a missing file is `T::default()`. The
/// host agent's state files (`up` progress, provider records) all start out
/// absent and mean "nothing yet" until their first save.
pub fn read_json_or_default<T: DeserializeOwned + Default>(
    path: &Path,
) -> Result<T, JsonFileError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| JsonFileError::Parse {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(JsonFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `value` as a JSON document ([`fsio::json_document`]: pretty, a
/// final newline) with [`write_atomic`], so a crash while saving a state
/// file leaves the previous or the next version — the counterpart of
/// [`read_json_or_default`].
pub fn write_json_atomic<T: Serialize>(
    path: &Path,
    value: &T,
    mode: u32,
) -> Result<(), JsonFileError> {
    let text = fsio::json_document(value).map_err(|source| JsonFileError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(write_atomic(path, &text, mode)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_with_mode_and_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.yaml");
        write_atomic(&path, b"first version, long", 0o600).unwrap();
        write_atomic(&path, b"second", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn failure_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("child"), b"y", 0o644).unwrap_err();
        assert!(err.to_string().contains("file/child"), "{err}");
    }

    #[test]
    fn json_missing_is_default_and_round_trips_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let empty: Vec<String> = read_json_or_default(&path).unwrap();
        assert!(empty.is_empty());
        let value = vec!["a".to_owned(), "b".to_owned()];
        write_json_atomic(&path, &value, 0o600).unwrap();
        assert_eq!(read_json_or_default::<Vec<String>>(&path).unwrap(), value);
        assert!(fs::read(&path).unwrap().ends_with(b"]\n"));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn json_damaged_or_unreadable_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "{not json").unwrap();
        let err = read_json_or_default::<Vec<String>>(&path).unwrap_err();
        assert!(matches!(err, JsonFileError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("state.json"), "{err}");
        let err = read_json_or_default::<Vec<String>>(dir.path()).unwrap_err();
        assert!(matches!(err, JsonFileError::Read { .. }), "{err}");
    }
}
