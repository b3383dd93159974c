//! How a command fails: Multipass's exit codes and its message shape.
//!
//! hostctl classifies a failed `multipass` call by the exit code and the
//! text together (host-agent/src/provider/multipass/errors.rs), so both must
//! be what the real client produces: `CommandLineError=1` when the client
//! refuses the arguments, `CommandFail=2` with `"<command> failed:
//! <message>"` for what the daemon refuses, `DaemonFail=3` when the daemon
//! cannot be reached, and 5 when the client's own `--timeout` expires
//! (k8s-bootstrap.md §4.3).

use std::fmt;

pub const COMMAND_LINE_ERROR: u8 = 1;
pub const COMMAND_FAIL: u8 = 2;
pub const DAEMON_FAIL: u8 = 3;
pub const TIMEOUT: u8 = 5;

/// A finished command that did not succeed: what to print on stderr and
/// the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// The client refused the command line (exit 1).
    pub fn command_line(message: impl Into<String>) -> Failure {
        Failure {
            code: COMMAND_LINE_ERROR,
            message: message.into(),
        }
    }

    /// The daemon refused or failed the command (exit 2):
    /// `<command> failed: <message>`.
    pub fn failed(command: &str, message: impl fmt::Display) -> Failure {
        Failure {
            code: COMMAND_FAIL,
            message: format!("{command} failed: {message}"),
        }
    }

    /// The daemon is unreachable (exit 3). The emulator has no daemon; it
    /// answers this way when it has no state directory, so hostctl reports
    /// "multipassd is not running" as it would on a Mac.
    pub fn daemon(command: &str, detail: impl fmt::Display) -> Failure {
        Failure {
            code: DAEMON_FAIL,
            message: format!("{command} failed: cannot connect to the multipass socket ({detail})"),
        }
    }

    /// The client's `--timeout` expired (exit 5).
    pub fn timeout(message: impl Into<String>) -> Failure {
        Failure {
            code: TIMEOUT,
            message: message.into(),
        }
    }

    pub fn not_found(command: &str, name: &str) -> Failure {
        Failure::failed(command, format!("instance \"{name}\" does not exist"))
    }

    pub fn deleted(command: &str, name: &str) -> Failure {
        Failure::failed(command, format!("instance \"{name}\" is deleted"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Turns an internal error into `<command> failed: <chain>` (exit 2).
pub trait OrFail<T> {
    fn or_fail(self, command: &str) -> Result<T, Failure>;
}

impl<T> OrFail<T> for anyhow::Result<T> {
    fn or_fail(self, command: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::failed(command, format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_clients_shape() {
        assert_eq!(
            Failure::not_found("info", "x").to_string(),
            "info failed: instance \"x\" does not exist"
        );
        assert_eq!(Failure::not_found("info", "x").code, 2);
        assert!(
            Failure::daemon("list", "no state")
                .message
                .contains("cannot connect to the multipass socket")
        );
    }
}
