//! Crash-safe files: the one way hostctl's crates replace a file that a
//! reader (another process, kubelet, the next start after a crash) must
//! never see torn.
//!
//! - [`write_atomic`] replaces a whole file: a temporary file in the same
//!   directory, created with its final mode, is written, fsynced, renamed
//!   over the final name, and the directory is fsynced. A crash at any point
//!   leaves the old file or the new one under the final name, never half of
//!   one, and a secret is never briefly readable with a looser mode.
//! - [`write_json_atomic`] does the same for a JSON document.
//! - [`rename`] moves a finished file into place durably.
//! - `PartFile` (feature `tokio`) receives a large stream under
//!   `<name>.part`, hashing it as it is written, and puts it under its name
//!   only once the hash is verified; dropped uncommitted, it removes itself.
//!
//! Temporary names start with a dot, so directory watchers that skip hidden
//! files (kubelet's static-pod manifests directory among them) never pick
//! one up, and [`is_temp_name`] lets a clean-up recognise what a crash left.
#![cfg_attr(
    test,
    allow(clippy::disallowed_methods, reason = "unit tests write fixtures")
)]
#![deny(missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[cfg(feature = "tokio")]
pub mod nonblocking;
#[cfg(feature = "tokio")]
mod part;
#[cfg(feature = "tokio")]
pub use part::{BUFFER_BYTES, CommitError, HashMismatch, PartFile, PartHasher};

/// A filesystem step that failed: what was being done, to which file (the
/// temporary one for steps before the rename), and the system's error.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct Error {
    /// The step, as a verb phrase ("creating", "renaming into place", …).
    pub action: &'static str,
    /// The file or directory the step acted on: the temporary file up to
    /// and including its fsync, the final name for the rename, the
    /// directory for the directory sync.
    pub path: PathBuf,
    /// What the system said; its [`kind`](std::io::Error::kind) tells a
    /// missing directory (`NotFound`) from a refused one
    /// (`PermissionDenied`) or a path that names no file (`InvalidInput`).
    #[source]
    pub source: std::io::Error,
}

impl Error {
    /// A `map_err` adapter for `action` on `path`.
    pub fn at(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let path = path.to_path_buf();
        move |source| Error {
            action,
            path,
            source,
        }
    }
}

/// Why a JSON document could not be written; the old one is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The value has no JSON form (e.g. a map with non-string keys).
    #[error("encoding {}: {source}", path.display())]
    Encode {
        /// The document that was to be written; no temporary was created.
        path: PathBuf,
        /// serde's reason the value cannot be JSON.
        #[source]
        source: serde_json::Error,
    },
    /// The document encoded but writing it failed ([`write_atomic`]'s
    /// error, naming the step and the file).
    #[error(transparent)]
    Write(#[from] Error),
}

/// Makes temporary names unique per call, not only per process: concurrent
/// writers of one file in one process each need their own temporary (a
/// shared name let one rename another's half-written file away).
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Marks the temporary names [`write_atomic`] uses: `.<name>.tmp-<pid>-<n>`.
const TEMP_MARK: &str = ".tmp-";

/// Whether `file_name` is a temporary file of [`write_atomic`]. Only an
/// interrupted write leaves one, so a directory's single writer may remove
/// those it finds when it starts.
pub fn is_temp_name(file_name: &str) -> bool {
    file_name.starts_with('.') && file_name.contains(TEMP_MARK)
}

/// The directory `path` is in (`.` for a bare name) and its file name.
fn split(path: &Path) -> Result<(&Path, String), Error> {
    let name = path.file_name().ok_or_else(|| Error {
        action: "writing",
        path: path.to_path_buf(),
        source: std::io::Error::new(ErrorKind::InvalidInput, "the path names no file"),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// Creates `path`, which must not exist, with exactly `mode`. `O_EXCL`
/// also refuses a symlink planted at `path` (even a dangling one) instead
/// of following it. The umask may narrow the creation mode and a
/// certificate must stay readable by tools run as another user, so the mode
/// is set exactly before anything is written.
pub(crate) fn create_exclusive(path: &Path, mode: u32) -> Result<File, Error> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(Error::at("creating", path))?;
    if let Err(e) = file.set_permissions(fs::Permissions::from_mode(mode)) {
        let _ = fs::remove_file(path);
        return Err(Error::at("setting mode of", path)(e));
    }
    Ok(file)
}

/// A fresh temporary file for `name` in `dir`. A name left by an earlier
/// process with the same pid is skipped, not reused.
fn create_temp(dir: &Path, name: &str, mode: u32) -> Result<(PathBuf, File), Error> {
    let mut tries = 0;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}{TEMP_MARK}{}-{n}", std::process::id()));
        match create_exclusive(&tmp, mode) {
            Err(e) if e.source.kind() == ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            other => return other.map(|f| (tmp, f)),
        }
    }
}

/// Replaces `path` atomically with `contents`, with `mode` from the moment
/// the file exists. The directory must exist. A symlink at `path` is
/// replaced, never followed. On failure the temporary file is removed and
/// `path` is as it was (unless only the final directory sync failed).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let (dir, name) = split(path)?;
    let (tmp, mut file) = create_temp(dir, &name, mode)?;
    let result = file
        .write_all(contents)
        .map_err(Error::at("writing", &tmp))
        .and_then(|()| file.sync_all().map_err(Error::at("syncing", &tmp)))
        .and_then(|()| fs::rename(&tmp, path).map_err(Error::at("renaming into place", path)));
    if result.is_err() {
        // Best effort: the temporary name never shadows a final name.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// The bytes of a JSON document as every writer here stores it: pretty
/// (people read these files when something went wrong) with a final newline.
pub fn json_document<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    Ok(text)
}

/// Encodes `value` for `path` ([`json_document`]).
pub(crate) fn encode_for<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
) -> Result<Vec<u8>, JsonError> {
    json_document(value).map_err(|source| JsonError::Encode {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `value` as a [`json_document`] with [`write_atomic`], so a crash
/// while saving a document leaves the previous or the next version.
pub fn write_json_atomic<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
    mode: u32,
) -> Result<(), JsonError> {
    Ok(write_atomic(path, &encode_for(path, value)?, mode)?)
}

/// Renames `from` to `to` (replacing it) and syncs `to`'s directory, and
/// `from`'s when it is another one, so after a crash the file is found
/// under the new name only. `from` should already be fsynced.
pub fn rename(from: &Path, to: &Path) -> Result<(), Error> {
    fs::rename(from, to).map_err(Error::at("renaming", from))?;
    sync_parent(to)?;
    if from.parent() != to.parent() {
        sync_parent(from)?;
    }
    Ok(())
}

/// Syncs the directory holding `path`, making a rename or creation in it
/// durable.
pub fn sync_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => sync_dir(d),
        _ => sync_dir(Path::new(".")),
    }
}

/// Syncs `dir`. A filesystem that cannot sync a directory (`EINVAL`) has
/// nothing more to offer, so that is not an error.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        other => other.map_err(Error::at("syncing directory", dir)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn names(dir: &Path) -> Result<Vec<String>, std::io::Error> {
        let mut names: Vec<String> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        Ok(names)
    }

    fn mode(path: &Path) -> Result<u32, std::io::Error> {
        Ok(fs::symlink_metadata(path)?.permissions().mode() & 0o777)
    }

    #[test]
    fn replaces_the_whole_file_with_its_mode_and_leaves_no_temporary() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("k.key");
        write_atomic(&path, b"first version, longer", 0o600)?;
        write_atomic(&path, b"second", 0o600)?;
        assert_eq!(fs::read(&path)?, b"second");
        assert_eq!(mode(&path)?, 0o600);
        assert_eq!(names(dir.path())?, ["k.key"]);
        Ok(())
    }

    /// The mode is exact (not narrowed by the umask) and is the file's mode
    /// from its creation: the temporary already has it before any byte.
    #[test]
    fn the_temporary_is_created_with_the_final_mode() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (tmp, _file) = create_temp(dir.path(), "x", 0o640)?;
        assert_eq!(mode(&tmp)?, 0o640);
        assert_eq!(fs::metadata(&tmp)?.len(), 0);
        let path = dir.path().join("cert.pem");
        write_atomic(&path, b"c", 0o644)?;
        assert_eq!(mode(&path)?, 0o644);
        Ok(())
    }

    /// A crash before the rename (here: a temporary written and never
    /// renamed) leaves the old file intact, and the leftover is recognisable
    /// and does not stop the next write.
    #[test]
    fn a_crash_before_the_rename_leaves_the_old_file() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old", 0o600)?;
        let (tmp, mut file) = create_temp(dir.path(), "state.json", 0o600)?;
        file.write_all(b"half of the ne")?;
        drop(file);
        assert_eq!(fs::read(&path)?, b"old");
        let leftover = tmp.file_name().map(|n| n.to_string_lossy().into_owned());
        assert!(
            leftover.as_deref().is_some_and(is_temp_name),
            "{leftover:?}"
        );
        assert!(!is_temp_name("state.json") && !is_temp_name(".hidden"));
        write_atomic(&path, b"new", 0o600)?;
        assert_eq!(fs::read(&path)?, b"new");
        Ok(())
    }

    #[test]
    fn a_symlink_at_the_destination_is_replaced_not_followed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"do not touch")?;
        let path = dir.path().join("etcd.yaml");
        std::os::unix::fs::symlink(&elsewhere, &path)?;
        write_atomic(&path, b"kind: Pod\n", 0o600)?;
        assert!(fs::symlink_metadata(&path)?.file_type().is_file());
        assert_eq!(fs::read(&path)?, b"kind: Pod\n");
        assert_eq!(fs::read(&elsewhere)?, b"do not touch");
        Ok(())
    }

    #[test]
    fn a_symlink_planted_at_a_new_file_is_refused() -> TestResult {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("target");
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&target, &planted)?;
        let err = create_exclusive(&planted, 0o600).unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::AlreadyExists);
        assert!(!target.exists());
        Ok(())
    }

    #[test]
    fn a_failure_names_the_step_and_the_file_and_keeps_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(&dir.path().join("missing/x"), b"y", 0o644).unwrap_err();
        assert_eq!(err.action, "creating");
        assert_eq!(err.source.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("missing/.x.tmp-"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        let err = write_atomic(Path::new("/"), b"y", 0o644).unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn json_is_pretty_with_a_final_newline() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("doc.json");
        write_json_atomic(&path, &["a", "b"], 0o600)?;
        assert_eq!(fs::read_to_string(&path)?, "[\n  \"a\",\n  \"b\"\n]\n");
        assert_eq!(mode(&path)?, 0o600);
        let mut bad = std::collections::BTreeMap::new();
        bad.insert(vec![1u8], 1);
        let err = write_json_atomic(&path, &bad, 0o600).unwrap_err();
        assert!(matches!(err, JsonError::Encode { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path)?, "[\n  \"a\",\n  \"b\"\n]\n");
        Ok(())
    }

    #[test]
    fn rename_moves_a_file_into_place() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (from, to) = (dir.path().join(".staged"), dir.path().join("final"));
        fs::write(&from, b"x")?;
        fs::write(&to, b"old")?;
        rename(&from, &to)?;
        assert_eq!(names(dir.path())?, ["final"]);
        assert_eq!(fs::read(&to)?, b"x");
        let err = rename(&from, &to).unwrap_err();
        assert_eq!((err.action, err.path), ("renaming", from));
        Ok(())
    }
}
