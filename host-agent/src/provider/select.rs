//! Which provider a home uses. `hostctl up --provider X` records the choice
//! in `$HOSTCTL_HOME/provider`, so that `status`, `down` and the rest act on
//! the same machines without being told again.

use super::Provider;
use super::local::{LocalOptions, LocalProvider};
use std::path::{Path, PathBuf};

/// The providers `--provider` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// Network namespaces on this Linux host (development, CI; needs root).
    Local,
    /// Multipass VMs (macOS, Linux).
    Multipass,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::Multipass => "multipass",
        }
    }

    fn parse(text: &str) -> Option<ProviderKind> {
        match text.trim() {
            "local" => Some(ProviderKind::Local),
            "multipass" => Some(ProviderKind::Multipass),
            _ => None,
        }
    }
}

/// Why no provider could be opened.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(
        "no provider recorded in {}: run `hostctl up --provider local` first",
        path.display()
    )]
    NoneRecorded { path: PathBuf },
    #[error("{} names an unknown provider {found:?}", path.display())]
    Unknown { path: PathBuf, found: String },
    #[error(
        "the multipass provider is not yet available in this build; use --provider local on Linux"
    )]
    NotYetAvailable,
    #[error("cannot access {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn choice_path(home: &Path) -> PathBuf {
    home.join("provider")
}

/// Records the provider `up` used.
pub fn record_choice(home: &Path, kind: ProviderKind) -> Result<(), SelectError> {
    let path = choice_path(home);
    let io = |source| SelectError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(home).map_err(io)?;
    std::fs::write(&path, format!("{}\n", kind.as_str())).map_err(io)
}

/// The provider recorded for this home; `Ok(None)` when `up` never ran.
pub fn recorded(home: &Path) -> Result<Option<ProviderKind>, SelectError> {
    let path = choice_path(home);
    match std::fs::read_to_string(&path) {
        Ok(text) => ProviderKind::parse(&text)
            .map(Some)
            .ok_or_else(|| SelectError::Unknown {
                found: text.trim().to_owned(),
                path,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SelectError::Io { path, source }),
    }
}

/// Opens a provider of the given kind for this home.
pub fn open(
    kind: ProviderKind,
    home: &Path,
    local: LocalOptions,
) -> Result<Box<dyn Provider>, SelectError> {
    match kind {
        ProviderKind::Local => Ok(Box::new(LocalProvider::new(home, local))),
        ProviderKind::Multipass => Err(SelectError::NotYetAvailable),
    }
}

/// The provider `up` recorded for this home, with default options.
pub fn for_home(home: &Path) -> Result<Box<dyn Provider>, SelectError> {
    match recorded(home)? {
        Some(kind) => open(kind, home, LocalOptions::default()),
        None => Err(SelectError::NoneRecorded {
            path: choice_path(home),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_round_trips_and_multipass_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            for_home(dir.path()),
            Err(SelectError::NoneRecorded { .. })
        ));
        record_choice(dir.path(), ProviderKind::Local).unwrap();
        assert_eq!(recorded(dir.path()).unwrap(), Some(ProviderKind::Local));
        assert_eq!(for_home(dir.path()).unwrap().name(), "local");
        let err = open(ProviderKind::Multipass, dir.path(), LocalOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not yet available"), "{err}");
    }
}
