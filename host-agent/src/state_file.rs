//! The host agent's JSON state documents — `up`'s step state and each
//! provider's record of what it created. Read fresh for every question
//! (another `hostctl` process may have changed them since), written whole
//! and atomically ([`crate::fsutil::write_json_atomic`]), and a damaged
//! file is named together with what to do about it, which differs per
//! document: removing a provider's record orphans the machines it lists.

use crate::fsutil::{JsonFileError, read_json_or_default, write_json_atomic};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// A document kept in one JSON file.
pub trait StateDocument: Serialize + DeserializeOwned + Default {
    /// The file's mode.
    const MODE: u32;
    /// What the user should do about a damaged file (follows "PATH is
    /// damaged (CAUSE); ").
    const IF_DAMAGED: &'static str;

    /// Reads the file; a missing file is the empty document.
    fn load(path: &Path) -> Result<Self, StateFileError> {
        read_json_or_default(path).map_err(StateFileError::advised::<Self>)
    }

    /// Writes the file atomically: a crash leaves the old or the new
    /// document, never half of one.
    fn save(&self, path: &Path) -> Result<(), StateFileError> {
        write_json_atomic(path, self, Self::MODE).map_err(StateFileError::advised::<Self>)
    }
}

/// A state document could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Reading or writing failed (see [`JsonFileError`]).
    #[error(transparent)]
    File(JsonFileError),
    #[error("{} is damaged ({source}); {advice}", path.display())]
    Damaged {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
        advice: &'static str,
    },
}

impl StateFileError {
    fn advised<D: StateDocument>(e: JsonFileError) -> StateFileError {
        match e {
            JsonFileError::Parse { path, source } => StateFileError::Damaged {
                path,
                source,
                advice: D::IF_DAMAGED,
            },
            other => StateFileError::File(other),
        }
    }
}

/// One process's handle on a state document: its changes are serialised
/// (read, change, write under one lock), so concurrent steps of one
/// `hostctl` never lose each other's records.
pub struct StateFile<D> {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
    document: PhantomData<fn() -> D>,
}

impl<D: StateDocument> StateFile<D> {
    pub fn new(path: PathBuf) -> StateFile<D> {
        StateFile {
            path,
            lock: tokio::sync::Mutex::new(()),
            document: PhantomData,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The document as it is on disk now.
    pub fn load(&self) -> Result<D, StateFileError> {
        D::load(&self.path)
    }

    /// Applies `change` to the current document and writes it back.
    pub async fn update<T>(&self, change: impl FnOnce(&mut D) -> T) -> Result<T, StateFileError> {
        let _guard = self.lock.lock().await;
        let mut document = self.load()?;
        let out = change(&mut document);
        document.save(&self.path)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Doc {
        n: u32,
    }

    impl StateDocument for Doc {
        const MODE: u32 = 0o600;
        const IF_DAMAGED: &'static str = "do the documented thing";
    }

    #[tokio::test]
    async fn missing_is_empty_updates_persist_and_damage_is_named_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::<Doc>::new(dir.path().join("sub/state.json"));
        assert_eq!(file.load().unwrap(), Doc::default());
        assert_eq!(
            file.update(|d| {
                d.n += 2;
                d.n
            })
            .await
            .unwrap(),
            2
        );
        assert_eq!(Doc::load(file.path()).unwrap(), Doc { n: 2 });
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(file.path()).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(file.path(), "{not json").unwrap();
        let err = file.update(|d| d.n += 1).await.unwrap_err().to_string();
        assert!(err.contains("sub/state.json is damaged"), "{err}");
        assert!(err.ends_with("; do the documented thing"), "{err}");
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), "{not json");
    }
}
