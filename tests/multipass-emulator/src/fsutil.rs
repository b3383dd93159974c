//! File primitives every module shares: advisory locks and atomic writes.
//!
//! hostctl launches up to three machines at once, each as its own
//! `multipass` process, so records and network setup are changed under a
//! `flock` and files are replaced by rename, never rewritten in place: a
//! concurrent reader sees the old file or the new one, not half of one.

use anyhow::Context as _;
use rustix::fs::FlockOperation;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// An exclusive `flock` on a file, released when dropped (or when the
/// process dies, so a killed CLI never leaves the state locked).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock is ours. hostctl bounds every call with its
    /// own deadline, so an unbounded wait here cannot hang a test forever.
    pub fn exclusive(path: &Path) -> anyhow::Result<FileLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening lock {}", path.display()))?;
        loop {
            match rustix::fs::flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e).with_context(|| format!("locking {}", path.display())),
            }
        }
    }
}

/// Writes `bytes` to `path` with `mode` atomically ([`fsio::write_atomic`]:
/// temporary file, fsync, rename), creating the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fsio::write_atomic(path, bytes, mode).with_context(|| format!("writing {}", path.display()))
}

/// Appends one line to a log file, creating it; a log that cannot be
/// written must never fail the operation it describes.
pub fn append_line(path: &Path, line: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{} {line}", timestamp());
    }
}

/// Seconds since the epoch, for records and log lines.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `@<unix seconds>.<millis>`: enough to order events across processes
/// without a date library.
fn timestamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("@{}.{:03}", d.as_secs(), d.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn atomic_writes_replace_with_the_given_mode() {
        let dir = std::env::temp_dir().join(format!("mpemu-fsutil-{}", std::process::id()));
        let path = dir.join("sub/file");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let _lock = FileLock::exclusive(&dir.join("lock")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
