//! Where the binaries under test are. `env!("CARGO_BIN_EXE_…")` only covers a
//! crate's own binaries, so the harness looks in the target directory the
//! test executable itself was built into (which honours `CARGO_TARGET_DIR`
//! and the profile).

use std::path::{Path, PathBuf};

/// The two programs every suite runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub hostctl: PathBuf,
    pub node_agent: PathBuf,
}

impl Binaries {
    /// Finds both binaries or panics with the command that builds them.
    pub fn locate() -> Binaries {
        Binaries {
            hostctl: find("hostctl", "HOSTCTL_BIN"),
            node_agent: find("node-agent", "HOSTCTL_NODE_AGENT"),
        }
    }
}

fn find(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf));
    match profile_dir.map(|d| d.join(name)) {
        Some(path) if path.is_file() => path,
        other => panic!(
            "{name} not found{}: build it first with \
             `cargo build -p host-agent -p node-agent` (make test does), or set ${env}",
            other
                .map(|p| format!(" at {}", p.display()))
                .unwrap_or_default()
        ),
    }
}
