//! The emulator's configuration, from the environment only: tests put a
//! `multipass` symlink first on `PATH` and run the real hostctl provider,
//! which passes no extra arguments, so everything the emulator needs must
//! travel in variables the test sets for hostctl (and hostctl's children
//! inherit).

use crate::error::Failure;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

pub const STATE_ENV: &str = "MULTIPASS_EMULATOR_STATE";
pub const MODE_ENV: &str = "MULTIPASS_EMULATOR_MODE";
pub const IMAGE_ENV: &str = "MULTIPASS_EMULATOR_IMAGE";
pub const BRIDGE_ENV: &str = "MULTIPASS_EMULATOR_BRIDGE";
pub const VERSION_ENV: &str = "MULTIPASS_EMULATOR_VERSION";

pub const DEFAULT_BRIDGE: &str = "mpemu0";
/// The release whose behaviour is emulated (192.168.252.0/24 since 1.16.2).
pub const DEFAULT_VERSION: &str = "1.16.3+mac";

/// How a machine is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A network namespace, a root directory and the emulator's own
    /// cloud-init, netplan and systemd stand-ins: boots in about a second.
    Fast,
    /// A real QEMU VM of the test image with the real cloud-init.
    Vm,
}

/// Everything the environment says.
#[derive(Debug, Clone)]
pub struct Config {
    pub state: PathBuf,
    pub mode: Mode,
    pub image: Option<PathBuf>,
    pub bridge: String,
}

impl Config {
    /// The version string alone: `multipass version` answers even without
    /// a state directory, as the real client does without its daemon.
    pub fn version() -> String {
        non_empty(VERSION_ENV).unwrap_or_else(|| DEFAULT_VERSION.to_owned())
    }

    /// Reads the environment and creates the state directory (0700: it
    /// holds user-data with enrolment tokens). A missing state directory is
    /// reported as an unreachable daemon (exit 3) for `command`.
    pub fn from_env(command: &str) -> Result<Config, Failure> {
        let state = non_empty(STATE_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| Failure::daemon(command, format!("{STATE_ENV} is not set")))?;
        if !state.is_absolute() {
            return Err(Failure::daemon(
                command,
                format!("{STATE_ENV} must be an absolute path"),
            ));
        }
        let mode = match non_empty(MODE_ENV).as_deref() {
            None | Some("fast") => Mode::Fast,
            Some("vm") => Mode::Vm,
            Some(other) => {
                return Err(Failure::daemon(
                    command,
                    format!("{MODE_ENV}={other}: expected `fast` or `vm`"),
                ));
            }
        };
        let bridge = non_empty(BRIDGE_ENV).unwrap_or_else(|| DEFAULT_BRIDGE.to_owned());
        let valid_bridge = (1..=15).contains(&bridge.len())
            && bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_bridge {
            return Err(Failure::daemon(
                command,
                format!("{BRIDGE_ENV}={bridge}: 1-15 letters, digits, '-' or '_'"),
            ));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&state)
            .and_then(|()| std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| Failure::daemon(command, format!("{}: {e}", state.display())))?;
        Ok(Config {
            state,
            mode,
            image: non_empty(IMAGE_ENV).map(PathBuf::from),
            bridge,
        })
    }
}

fn non_empty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}
