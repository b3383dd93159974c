//! Exit codes are part of the interface: scripts branch on them, so they are
//! fixed here and listed in the README.

use std::process::ExitCode;

/// Why `hostctl` stopped. The numbers never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done.
    Ok = 0,
    /// A failure not covered by a more specific code (I/O, provider, agent).
    Failure = 1,
    /// The command line itself was wrong (clap uses 2 as well).
    Usage = 2,
    /// The topology file is missing, unreadable or invalid.
    InvalidTopology = 3,
    /// The PKI under `$HOSTCTL_HOME/pki` is damaged or inconsistent.
    Pki = 4,
    /// A precondition is not met (not root, a tool missing, daemon down).
    Precondition = 5,
    /// `verify`: an architecture contract is broken.
    ContractBroken = 6,
    /// Stopped by Ctrl-C (128 + SIGINT, as shells report it); a rerun
    /// continues.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}
