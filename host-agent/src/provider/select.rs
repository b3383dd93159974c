//! Which provider a home uses. `hostctl up --provider X` records the choice
//! in `$HOSTCTL_HOME/provider`, so that `status`, `down` and the rest act on
//! the same machines without being told again. For Multipass it also
//! records the machine names the topology owns (`provider-machines`), so
//! that later commands never see (or delete) a user's other instances.

use super::Provider;
use super::local::{LocalOptions, LocalProvider};
use super::multipass::{MultipassConfig, MultipassProvider};
use super::qemu::{QemuOptions, QemuProvider};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The providers `--provider` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// Network namespaces on this Linux host (development, CI; needs root).
    Local,
    /// Multipass VMs (macOS, Linux).
    Multipass,
    /// QEMU VMs on this Linux host (base image: $HOSTCTL_QEMU_IMAGE).
    Qemu,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::Multipass => "multipass",
            ProviderKind::Qemu => "qemu",
        }
    }

    fn parse(text: &str) -> Option<ProviderKind> {
        match text.trim() {
            "local" => Some(ProviderKind::Local),
            "multipass" => Some(ProviderKind::Multipass),
            "qemu" => Some(ProviderKind::Qemu),
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

fn machines_path(home: &Path) -> PathBuf {
    home.join("provider-machines")
}

/// How to open a provider beyond its kind.
#[derive(Debug, Clone, Default)]
pub struct ProviderOptions {
    pub local: LocalOptions,
    /// The machine names this home owns (Multipass only lists and deletes
    /// these); `up` passes the topology's node names.
    pub managed: BTreeSet<String>,
}

/// Records the machine names `up` manages, merged with those recorded
/// before (an earlier topology's machines must still be deletable).
pub fn record_machines(home: &Path, names: &BTreeSet<String>) -> Result<(), SelectError> {
    let path = machines_path(home);
    let mut all = recorded_machines(home)?;
    all.extend(names.iter().cloned());
    let text: String = all.iter().map(|n| format!("{n}\n")).collect();
    write_record(&path, &text, 0o600)
}

fn recorded_machines(home: &Path) -> Result<BTreeSet<String>, SelectError> {
    let path = machines_path(home);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(source) => Err(SelectError::Io { path, source }),
    }
}

/// `explicit`, else the provider of the last `up`, else the one a first run
/// on this machine can succeed with: Multipass on macOS (the product's
/// target), the local provider for root on Linux. `None`: the user chooses.
pub fn choose(
    explicit: Option<ProviderKind>,
    home: &Path,
) -> Result<Option<ProviderKind>, SelectError> {
    if let Some(kind) = explicit.or(recorded(home)?) {
        return Ok(Some(kind));
    }
    Ok(if cfg!(target_os = "macos") {
        Some(ProviderKind::Multipass)
    } else if rustix::process::geteuid().is_root() {
        Some(ProviderKind::Local)
    } else {
        None
    })
}

/// Records the provider `up` used, atomically: a torn or empty choice
/// would make every later command refuse the home as naming an unknown
/// provider.
pub fn record_choice(home: &Path, kind: ProviderKind) -> Result<(), SelectError> {
    write_record(&choice_path(home), &format!("{}\n", kind.as_str()), 0o600)
}

/// Writes one of the home's provider records ([`crate::fsutil::write_atomic`]).
fn write_record(path: &Path, text: &str, mode: u32) -> Result<(), SelectError> {
    crate::fsutil::write_atomic(path, text.as_bytes(), mode).map_err(|e| SelectError::Io {
        path: e.path,
        source: e.source,
    })
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

/// Opens a provider of the given kind for this home. Multipass gets a
/// scratch directory under the home for user-data (a snap-confined client
/// cannot read `/tmp`) and sees only the `managed` machines.
pub fn open(
    kind: ProviderKind,
    home: &Path,
    options: ProviderOptions,
) -> Result<Box<dyn Provider>, SelectError> {
    match kind {
        ProviderKind::Local => Ok(Box::new(LocalProvider::new(home, options.local))),
        ProviderKind::Multipass => Ok(Box::new(MultipassProvider::new(MultipassConfig {
            scratch_dir: home.join("multipass-scratch"),
            managed: Some(options.managed),
            ..MultipassConfig::default()
        }))),
        ProviderKind::Qemu => Ok(Box::new(QemuProvider::new(home, QemuOptions::default()))),
    }
}

/// The provider `up` recorded for this home, managing the machines `up`
/// recorded.
pub fn for_home(home: &Path) -> Result<Box<dyn Provider>, SelectError> {
    match recorded(home)? {
        Some(kind) => open(
            kind,
            home,
            ProviderOptions {
                local: LocalOptions::default(),
                managed: recorded_machines(home)?,
            },
        ),
        None => Err(SelectError::NoneRecorded {
            path: choice_path(home),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_round_trips_and_multipass_sees_only_recorded_machines() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            for_home(dir.path()),
            Err(SelectError::NoneRecorded { .. })
        ));
        record_choice(dir.path(), ProviderKind::Local).unwrap();
        assert_eq!(recorded(dir.path()).unwrap(), Some(ProviderKind::Local));
        assert_eq!(for_home(dir.path()).unwrap().name(), "local");
        record_choice(dir.path(), ProviderKind::Multipass).unwrap();
        record_machines(dir.path(), &["a".to_owned()].into()).unwrap();
        record_machines(dir.path(), &["b".to_owned()].into()).unwrap();
        assert_eq!(
            recorded_machines(dir.path()).unwrap(),
            ["a".to_owned(), "b".to_owned()].into()
        );
        assert_eq!(for_home(dir.path()).unwrap().name(), "multipass");
    }
}
