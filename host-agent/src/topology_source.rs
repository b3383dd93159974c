//! Where a command's topology comes from, and the one way every command
//! loads and checks it (so validation runs at the start of each of them).
//!
//! Precedence: `--topology FILE` (or `$HOSTCTL_TOPOLOGY`), else `./hostctl.yaml`
//! when it exists, else the built-in default (the seed specification).

use crate::cli::coded;
use crate::exit::Exit;
use std::path::{Path, PathBuf};
use topology::{Diagnostic, Diagnostics, Topology};

/// The file `hostctl init` writes and later commands look for.
pub const DEFAULT_FILE: &str = "hostctl.yaml";

/// A topology source, chosen once per command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologySource {
    File(PathBuf),
    BuiltIn,
}

impl TopologySource {
    /// Applies the precedence rule above.
    pub fn locate(explicit: Option<&Path>) -> Self {
        match explicit {
            Some(path) => TopologySource::File(path.to_path_buf()),
            None if Path::new(DEFAULT_FILE).exists() => {
                TopologySource::File(PathBuf::from(DEFAULT_FILE))
            }
            None => TopologySource::BuiltIn,
        }
    }

    /// How to name the source in messages.
    pub fn describe(&self) -> String {
        match self {
            TopologySource::File(p) => p.display().to_string(),
            TopologySource::BuiltIn => "the built-in default topology".to_owned(),
        }
    }

    /// Reads and checks the topology. Errors carry every diagnostic and exit
    /// with [`Exit::InvalidTopology`]; warnings come back for the caller to show.
    pub fn load(&self) -> Result<(Topology, Vec<Diagnostic>), Diagnostics> {
        match self {
            TopologySource::File(path) => {
                topology::load_file(path).map(|loaded| (loaded.topology, loaded.warnings))
            }
            TopologySource::BuiltIn => {
                let t = topology::default_topology();
                let diagnostics = t.validate();
                if diagnostics.has_errors() {
                    return Err(diagnostics);
                }
                Ok((t, diagnostics.0))
            }
        }
    }
}

/// Prints each topology warning once per process, however many times the
/// command loads or resolves the topology (the same warning came twice
/// from `up`, three times from `etcd snapshot`).
pub fn print_warnings(warnings: &[Diagnostic]) {
    static PRINTED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let mut printed = PRINTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for w in warnings {
        let key = (w.path.clone(), w.message.clone());
        if !printed.contains(&key) {
            eprintln!("{w}");
            printed.push(key);
        }
    }
}

/// Loads the topology for a command that needs one: prints warnings to
/// stderr and turns errors into an [`Exit::InvalidTopology`] failure.
pub fn load_checked(explicit: Option<&Path>) -> anyhow::Result<Topology> {
    let source = TopologySource::locate(explicit);
    match source.load() {
        Ok((topology, warnings)) => {
            print_warnings(&warnings);
            Ok(topology)
        }
        Err(diagnostics) => Err(coded(
            Exit::InvalidTopology,
            anyhow::anyhow!(
                "{} is not a valid topology:\n{diagnostics}",
                source.describe()
            ),
        )),
    }
}
