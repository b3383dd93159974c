//! Large files received as a stream: written under `<target>.part`, hashed
//! on the way in (so verifying never reads the file back), and renamed to
//! `<target>` only once the hash checks out. A crash, a broken stream or a
//! wrong hash therefore never leaves a partial file under the final name,
//! and an uncommitted part file removes itself when dropped.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::Error;

/// Write buffer of a part file: large writes, few syscalls.
pub const BUFFER_BYTES: usize = 256 * 1024;

/// What a part file feeds its bytes to while they are written. The default,
/// [`Sha256`], hashes everything; a format with its own integrity rule
/// (an etcd snapshot carries its hash at its end) brings its own.
pub trait PartHasher: Clone + Send {
    /// Takes the next bytes of the file.
    fn update(&mut self, data: &[u8]);
}

impl PartHasher for Sha256 {
    fn update(&mut self, data: &[u8]) {
        Digest::update(self, data);
    }
}

/// The content of a part file was not what the caller expected; nothing
/// was put under the final name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: sha256 {actual} does not match the expected {expected}", path.display())]
pub struct HashMismatch {
    /// The part file (`<target>.part`) whose content was refused; it is
    /// removed when the [`PartFile`] is dropped.
    pub path: PathBuf,
    /// The SHA-256 the caller asked for, in lowercase hex.
    pub expected: String,
    /// The SHA-256 of what was actually written, in lowercase hex.
    pub actual: String,
}

/// Why [`PartFile::commit_with`] did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError<E> {
    /// The verification refused the content.
    #[error(transparent)]
    Rejected(E),
    /// The content was accepted but flushing, syncing or renaming it into
    /// place failed; the target may still hold its old content.
    #[error(transparent)]
    Io(#[from] Error),
}

/// A file being received; removed unless committed.
pub struct PartFile<H: PartHasher = Sha256> {
    target: PathBuf,
    part: PathBuf,
    file: BufWriter<tokio::fs::File>,
    hasher: H,
    size: u64,
    committed: bool,
}

/// `<target>.part`.
fn part_path(target: &Path) -> PathBuf {
    let mut part = target.as_os_str().to_owned();
    part.push(".part");
    PathBuf::from(part)
}

impl PartFile<Sha256> {
    /// Starts `<target>.part` with `mode`, hashing with SHA-256.
    pub async fn create(target: &Path, mode: u32) -> Result<Self, Error> {
        Self::with_hasher(target, mode, Sha256::new()).await
    }

    /// Verifies that the content hashes to `expected` (any content when
    /// `None`), then commits; returns the SHA-256.
    pub async fn commit(
        self,
        expected: Option<&[u8]>,
    ) -> Result<[u8; 32], CommitError<HashMismatch>> {
        let path = self.part.clone();
        self.commit_with(|hasher| {
            let actual: [u8; 32] = hasher.finalize().into();
            match expected {
                Some(e) if e != actual.as_slice() => Err(HashMismatch {
                    path,
                    expected: hex(e),
                    actual: hex(&actual),
                }),
                _ => Ok(actual),
            }
        })
        .await
    }
}

impl<H: PartHasher> PartFile<H> {
    /// Starts `<target>.part` with `mode` from its creation (the directory
    /// must exist), feeding what is written to `hasher`. A part file left
    /// at that name by an interrupted reception is replaced; a symlink
    /// there is removed, never followed.
    pub async fn with_hasher(target: &Path, mode: u32, hasher: H) -> Result<Self, Error> {
        let part = part_path(target);
        let file = crate::nonblocking::blocking(&part, {
            let part = part.clone();
            move || {
                match std::fs::remove_file(&part) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::at("removing", &part)(e));
                    }
                    _ => {}
                }
                crate::create_exclusive(&part, mode)
            }
        })
        .await?;
        Ok(PartFile {
            target: target.to_owned(),
            part,
            file: BufWriter::with_capacity(BUFFER_BYTES, tokio::fs::File::from_std(file)),
            hasher,
            size: 0,
            committed: false,
        })
    }

    /// Appends the next bytes.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        self.file
            .write_all(data)
            .await
            .map_err(Error::at("writing", &self.part))
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The part file's path (`<target>.part`).
    pub fn path(&self) -> &Path {
        &self.part
    }

    /// Lets `verify` judge what was written (it gets a copy of the hasher);
    /// only if it accepts is the file flushed, fsynced, renamed to its
    /// target and the directory synced. Returns what `verify` returned.
    pub async fn commit_with<T, E>(
        mut self,
        verify: impl FnOnce(H) -> Result<T, E>,
    ) -> Result<T, CommitError<E>> {
        let verified = verify(self.hasher.clone()).map_err(CommitError::Rejected)?;
        crate::nonblocking::flush_and_sync(&mut self.file, &self.part).await?;
        tokio::fs::rename(&self.part, &self.target)
            .await
            .map_err(Error::at("renaming", &self.part))?;
        self.committed = true;
        crate::nonblocking::sync_parent(&self.target).await?;
        Ok(verified)
    }
}

impl<H: PartHasher> Drop for PartFile<H> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn sha256(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[tokio::test]
    async fn a_verified_part_file_replaces_the_target_with_its_mode() -> TestResult {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("snap.db");
        std::fs::write(&target, b"old")?;
        let mut part = PartFile::create(&target, 0o600).await?;
        assert_eq!(part.path(), dir.path().join("snap.db.part"));
        let mode = std::fs::metadata(part.path())?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the mode is the final one from creation");
        part.write(b"hello ").await?;
        part.write(b"world").await?;
        assert_eq!(part.size(), 11);
        let hash = part.commit(Some(&sha256(b"hello world"))).await?;
        assert_eq!(hash, sha256(b"hello world"));
        assert_eq!(std::fs::read(&target)?, b"hello world");
        assert!(!dir.path().join("snap.db.part").exists());
        let mode = std::fs::metadata(&target)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        Ok(())
    }

    /// A crash or a broken stream before the commit (simulated by dropping
    /// the part file) and a wrong hash both leave the old file intact and
    /// no part file behind.
    #[tokio::test]
    async fn an_uncommitted_or_refused_part_file_leaves_the_old_file() -> TestResult {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("snap.db");
        std::fs::write(&target, b"old")?;

        let mut part = PartFile::create(&target, 0o600).await?;
        part.write(b"half").await?;
        drop(part);
        assert_eq!(std::fs::read(&target)?, b"old");
        assert!(!dir.path().join("snap.db.part").exists());

        let mut part = PartFile::create(&target, 0o600).await?;
        part.write(b"tampered").await?;
        match part.commit(Some(&sha256(b"original"))).await {
            Err(CommitError::Rejected(m)) => {
                assert_eq!(m.expected, hex(&sha256(b"original")));
                assert_eq!(m.actual, hex(&sha256(b"tampered")));
            }
            other => panic!("expected a hash mismatch, got {other:?}"),
        }
        assert_eq!(std::fs::read(&target)?, b"old");
        assert!(!dir.path().join("snap.db.part").exists());
        Ok(())
    }

    /// A leftover part file is replaced; a symlink at the part name is
    /// removed, not written through.
    #[tokio::test]
    async fn a_leftover_or_planted_part_name_is_replaced() -> TestResult {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("snap.db");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, b"do not touch")?;
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("snap.db.part"))?;
        let mut part = PartFile::create(&target, 0o644).await?;
        part.write(b"new").await?;
        part.commit(None).await?;
        assert_eq!(std::fs::read(&target)?, b"new");
        assert_eq!(std::fs::read(&elsewhere)?, b"do not touch");
        Ok(())
    }

    #[derive(Clone, Default)]
    struct Counter(u64);

    impl PartHasher for Counter {
        fn update(&mut self, data: &[u8]) {
            self.0 += data.iter().filter(|b| **b == b'x').count() as u64;
        }
    }

    #[tokio::test]
    async fn a_custom_hasher_decides_and_its_verdict_is_returned() -> TestResult {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("f");
        let mut part = PartFile::with_hasher(&target, 0o600, Counter::default()).await?;
        part.write(b"xax").await?;
        let refused = part.commit_with(|c| if c.0 == 3 { Ok(c.0) } else { Err(c.0) });
        assert!(matches!(refused.await, Err(CommitError::Rejected(2))));
        assert!(!target.exists());
        let mut part = PartFile::with_hasher(&target, 0o600, Counter::default()).await?;
        part.write(b"xxx").await?;
        let accepted = part.commit_with(|c| if c.0 == 3 { Ok(c.0) } else { Err(c.0) });
        assert!(matches!(accepted.await, Ok(3)));
        assert_eq!(std::fs::read(&target)?, b"xxx");
        Ok(())
    }
}
