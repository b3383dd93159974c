//! The crate's operations for async callers: each runs on tokio's blocking
//! pool, so a slow disk (fsync of a large file, a busy directory) never
//! stalls the runtime threads that serve RPCs.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::{Error, JsonError};

/// Runs `f` on the blocking pool; a panic in it or a runtime shutting down
/// is reported as an error on `path`.
pub(crate) async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error {
        action: "running blocking file I/O on",
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?
}

/// [`crate::write_atomic`] off the runtime threads.
pub async fn write_atomic(path: &Path, contents: Vec<u8>, mode: u32) -> Result<(), Error> {
    let owned: PathBuf = path.to_path_buf();
    blocking(path, move || crate::write_atomic(&owned, &contents, mode)).await
}

/// [`crate::write_json_atomic`] off the runtime threads (the value is
/// encoded on the caller's thread: it is small and borrowed).
pub async fn write_json_atomic<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
    mode: u32,
) -> Result<(), JsonError> {
    let text = crate::encode_for(path, value)?;
    Ok(write_atomic(path, text, mode).await?)
}

/// [`crate::rename`] off the runtime threads.
pub async fn rename(from: &Path, to: &Path) -> Result<(), Error> {
    let (owned_from, owned_to) = (from.to_path_buf(), to.to_path_buf());
    blocking(from, move || crate::rename(&owned_from, &owned_to)).await
}

/// Writes out what `file` buffers and fsyncs it, so its bytes are on disk
/// before it is given a name; failures name `path`, the file's own.
pub async fn flush_and_sync(
    file: &mut BufWriter<tokio::fs::File>,
    path: &Path,
) -> Result<(), Error> {
    file.flush().await.map_err(Error::at("flushing", path))?;
    file.get_ref()
        .sync_all()
        .await
        .map_err(Error::at("syncing", path))
}

/// [`crate::sync_parent`] off the runtime threads.
pub async fn sync_parent(path: &Path) -> Result<(), Error> {
    let owned = path.to_path_buf();
    blocking(path, move || crate::sync_parent(&owned)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn async_writes_and_renames_land_whole() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("meta.json");
        write_json_atomic(&path, &serde_json::json!({"shipped": true}), 0o600).await?;
        assert_eq!(
            std::fs::read_to_string(&path)?,
            "{\n  \"shipped\": true\n}\n"
        );
        let moved = dir.path().join("moved.json");
        rename(&path, &moved).await?;
        assert!(!path.exists() && moved.exists());
        write_atomic(&path, b"x".to_vec(), 0o644).await?;
        assert_eq!(std::fs::read(&path)?, b"x");
        Ok(())
    }
}
