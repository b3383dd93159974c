//! The user-data file handed to `multipass launch --cloud-init`. It carries
//! the node's bootstrap secrets, so it is created owner-only (0600), never
//! over an existing file, and removed as soon as the launch call returns.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A user-data file that deletes itself when dropped.
#[derive(Debug)]
pub struct UserDataFile {
    path: PathBuf,
}

impl UserDataFile {
    pub fn write(dir: &Path, name: &str, content: &str) -> std::io::Result<Self> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            "hostctl-{name}-{}-{n}.user-data.yaml",
            std::process::id()
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        // From here on the file exists: let Drop remove it on any failure.
        let this = UserDataFile { path };
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        Ok(this)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UserDataFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot remove user-data file");
        }
    }
}
