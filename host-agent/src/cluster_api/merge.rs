//! Merging hostctl's contexts into a user's kubeconfig without disturbing
//! anything else, as `kind export kubeconfig` and `k3d kubeconfig merge` do.
//!
//! Decisions:
//! - The file is read as plain YAML into a `serde_json::Value`, so fields
//!   this code does not know (extensions, exec plugins, preferences) survive.
//!   Key order inside a mapping may change; values do not.
//! - Entries are replaced by name in `clusters`, `users` and `contexts`;
//!   every other entry keeps its position. New entries are appended.
//! - `current-context` changes only when it is unset or when the caller asks
//!   (`--switch`), so merging never moves a user off the cluster they use.
//! - No backup copy: the write is atomic (temp file, fsync, rename), so a
//!   crash leaves the old file or the new one, and the merge only touches
//!   hostctl's own names. The file is written 0600 because it holds keys.
//! - `$KUBECONFIG` with several paths: the first one is written, like
//!   kubectl's `config set` and kind.
//! - Read–merge–write runs under a lock ([`lock`]): client-go's own
//!   convention, a `<file>.lock` created exclusively, so hostctl and kubectl
//!   never overwrite each other's changes, plus a process-wide mutex for the
//!   parallel `kubeconfig/<cluster>` steps of one `up` (one in about twelve
//!   runs lost a context, or failed, before).

use crate::fsutil::write_atomic;
use serde_json::{Map, Value};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The three named lists of a kubeconfig.
const SECTIONS: [&str; 3] = ["clusters", "users", "contexts"];
/// A kubeconfig holds client keys.
const MODE: u32 = 0o600;

/// Why a merge could not be done; the target file is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{source_name} is not a kubeconfig: {reason}")]
    Parse { source_name: String, reason: String },
    #[error("{source_name}: `{section}` is not a list")]
    Shape {
        source_name: String,
        section: &'static str,
    },
    #[error("cannot encode the merged kubeconfig: {0}")]
    Encode(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    #[error(
        "{} is held (another hostctl or kubectl is changing the kubeconfig); if none is running, remove it",
        path.display()
    )]
    Locked { path: PathBuf },
    #[error("cannot create the lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How long a merge waits for another writer's `<file>.lock` to go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The lock on one kubeconfig: held while it exists, removed on drop.
struct FileLock {
    path: PathBuf,
    _process: std::sync::MutexGuard<'static, ()>,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes `<path>.lock` (client-go's convention: created with O_EXCL, removed
/// when done), waiting a bounded time for another holder.
fn lock(path: &Path) -> Result<FileLock, MergeError> {
    static IN_PROCESS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let process = IN_PROCESS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| MergeError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    }
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock_path)
        {
            Ok(_) => {
                return Ok(FileLock {
                    path: lock_path,
                    _process: process,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if std::time::Instant::now() >= deadline {
                    return Err(MergeError::Locked { path: lock_path });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(source) => {
                return Err(MergeError::Lock {
                    path: lock_path,
                    source,
                });
            }
        }
    }
}

/// The file `--merge` writes: the first non-empty path of `$KUBECONFIG`,
/// else `<home>/.kube/config`. `None` when neither is known.
pub fn target_path(kubeconfig_env: Option<&OsStr>, home: Option<&Path>) -> Option<PathBuf> {
    let from_env =
        kubeconfig_env.and_then(|v| std::env::split_paths(v).find(|p| !p.as_os_str().is_empty()));
    from_env.or_else(|| home.map(|h| h.join(".kube").join("config")))
}

/// Merges the `incoming` kubeconfigs (YAML) into `existing` (YAML; empty
/// means no file yet) and returns the result as YAML. `switch_to` sets
/// `current-context`; otherwise it is set only when unset.
pub fn merge(
    existing: &str,
    source_name: &str,
    incoming: &[String],
    switch_to: Option<&str>,
) -> Result<String, MergeError> {
    let mut doc = parse(existing, source_name)?;
    let mut first_context = None;
    for (i, kc) in incoming.iter().enumerate() {
        let name = format!("hostctl kubeconfig {i}");
        let add = parse(kc, &name)?;
        for section in SECTIONS {
            for entry in list(&add, section, &name)? {
                upsert(&mut doc, section, entry.clone(), source_name)?;
            }
        }
        if first_context.is_none() {
            first_context = add
                .get("current-context")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
    }
    let unset = doc
        .get("current-context")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let new_current = switch_to
        .map(str::to_owned)
        .or(if unset { first_context } else { None });
    if let Some(ctx) = new_current {
        doc.insert("current-context".to_owned(), Value::String(ctx));
    }
    serde_saphyr::to_string(&Value::Object(doc)).map_err(|e| MergeError::Encode(e.to_string()))
}

/// Reads `path` (absent = empty), merges, and writes it back atomically
/// with mode 0600, under the file's lock.
pub fn merge_into_file(
    path: &Path,
    incoming: &[String],
    switch_to: Option<&str>,
) -> Result<(), MergeError> {
    let _lock = lock(path)?;
    let existing = read_existing(path)?;
    let merged = merge(&existing, &path.display().to_string(), incoming, switch_to)?;
    write_atomic(path, merged.as_bytes(), MODE)?;
    Ok(())
}

/// Removes the entries named `names` from `clusters`, `users` and
/// `contexts` of the kubeconfig at `path` (what `down --purge` does with
/// the entries hostctl merged), clearing `current-context` if it was one
/// of them. Everything else stays; a missing file is nothing to do.
pub fn remove_from_file(path: &Path, names: &[String]) -> Result<(), MergeError> {
    let _lock = lock(path)?;
    let existing = read_existing(path)?;
    if existing.trim().is_empty() {
        return Ok(());
    }
    let source_name = path.display().to_string();
    let mut doc = parse(&existing, &source_name)?;
    for section in SECTIONS {
        if let Some(Value::Array(items)) = doc.get_mut(section) {
            items.retain(|e| {
                e.get("name")
                    .and_then(Value::as_str)
                    .is_none_or(|n| !names.iter().any(|x| x == n))
            });
        }
    }
    let current = doc.get("current-context").and_then(Value::as_str);
    if current.is_some_and(|c| names.iter().any(|x| x == c)) {
        doc.insert("current-context".to_owned(), Value::String(String::new()));
    }
    let text = serde_saphyr::to_string(&Value::Object(doc))
        .map_err(|e| MergeError::Encode(e.to_string()))?;
    write_atomic(path, text.as_bytes(), MODE)?;
    Ok(())
}

/// The names a kubeconfig's `clusters`, `users` and `contexts` carry (what
/// a merge of it adds to the target), sorted and unique.
pub fn entry_names(yaml: &str) -> Result<Vec<String>, MergeError> {
    let doc = parse(yaml, "hostctl kubeconfig")?;
    let mut names = std::collections::BTreeSet::new();
    for section in SECTIONS {
        for entry in list(&doc, section, "hostctl kubeconfig")? {
            if let Some(name) = entry.get("name").and_then(Value::as_str) {
                names.insert(name.to_owned());
            }
        }
    }
    Ok(names.into_iter().collect())
}

fn read_existing(path: &Path) -> Result<String, MergeError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(MergeError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse(yaml: &str, source_name: &str) -> Result<Map<String, Value>, MergeError> {
    if yaml.trim().is_empty() {
        return Ok(empty());
    }
    let value: Value = serde_saphyr::from_str(yaml).map_err(|e| MergeError::Parse {
        source_name: source_name.to_owned(),
        reason: e.to_string(),
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(empty()),
        _ => Err(MergeError::Parse {
            source_name: source_name.to_owned(),
            reason: "the document is not a mapping".to_owned(),
        }),
    }
}

fn empty() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("apiVersion".to_owned(), Value::String("v1".to_owned()));
    m.insert("kind".to_owned(), Value::String("Config".to_owned()));
    m.insert("preferences".to_owned(), Value::Object(Map::new()));
    m
}

fn list<'a>(
    doc: &'a Map<String, Value>,
    section: &'static str,
    source_name: &str,
) -> Result<&'a [Value], MergeError> {
    match doc.get(section) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(MergeError::Shape {
            source_name: source_name.to_owned(),
            section,
        }),
    }
}

/// Replaces the entry of `section` with the same `name`, or appends it.
fn upsert(
    doc: &mut Map<String, Value>,
    section: &'static str,
    entry: Value,
    source_name: &str,
) -> Result<(), MergeError> {
    let slot = doc
        .entry(section.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(items) = slot else {
        return Err(MergeError::Shape {
            source_name: source_name.to_owned(),
            section,
        });
    };
    let name = entry.get("name").cloned();
    match items.iter_mut().find(|e| e.get("name") == name.as_ref()) {
        Some(existing) => *existing = entry,
        None => items.push(entry),
    }
    Ok(())
}
