//! Turning a failed `multipass` call into a [`ProviderError`] the caller can
//! act on. Multipass has no machine-readable errors: the client exits with
//! `CommandLineError=1`, `CommandFail=2`, `DaemonFail=3`, `Retry=4`, or 5 when
//! its own `--timeout` expires, and prints `"<command> failed: <message>"`
//! (k8s-bootstrap.md §4.3). So the class comes from the exit code where it is
//! decisive (3, 5) and otherwise from the daemon's documented messages.

use super::cli::{CallError, CallOutput};
use crate::provider::ProviderError;

/// `CommandLineError`: the client refused the arguments before asking the
/// daemon, so nothing about the host's resources can be concluded.
pub const EXIT_COMMAND_LINE: i32 = 1;
/// `DaemonFail`: gRPC `UNAVAILABLE`, i.e. the client could not reach multipassd.
pub const EXIT_DAEMON_FAIL: i32 = 3;
/// The client's own `--timeout` expired (`timeout_exit_code`).
pub const EXIT_TIMEOUT: i32 = 5;

/// What the client prints when multipassd is not listening (seen on every
/// command: `list failed: cannot connect to the multipass socket`).
const DAEMON_DOWN: &str = "cannot connect to the multipass socket";

/// Advice for the two preconditions only the user can fix.
const INSTALL_HINT: &str = "install Multipass (https://canonical.com/multipass, or \
     `brew install --cask multipass`) or give the path to the `multipass` client";
const DAEMON_HINT: &str = "the Multipass daemon (multipassd) is not running or not reachable; \
     start it (macOS: `sudo launchctl kickstart -k system/com.canonical.multipassd`, \
     Linux: `sudo snap restart multipass`) and retry";

/// Phrases (lower case) that mean the host could not give the machine what it
/// asked for: QEMU's allocation failures and the OS's out-of-space errors as
/// Multipass passes them through, plus its own "not enough"/"insufficient".
const RESOURCE_PHRASES: &[&str] = &[
    "not enough",
    "insufficient",
    "cannot allocate memory",
    "cannot set up guest memory",
    "out of memory",
    "no space left on device",
];

/// Phrases that mean a wait inside Multipass ran out (`base_virtual_machine.cpp`,
/// `launch.cpp`); the machine may well be fine.
const TIMEOUT_PHRASES: &[&str] = &["timed out waiting for"];

/// Which command failed, for messages and for the launch-only classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    List,
    Info,
    Launch,
    Start,
    Stop,
    Delete,
    Version,
    /// `multipass get <key>` (settings such as `local.driver`).
    Get,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::List => "list",
            Operation::Info => "info",
            Operation::Launch => "launch",
            Operation::Start => "start",
            Operation::Stop => "stop",
            Operation::Delete => "delete",
            Operation::Version => "version",
            Operation::Get => "get",
        }
    }
}

/// A call that never produced output: the client is missing, or hung.
pub fn from_call_error(op: Operation, name: &str, err: CallError) -> ProviderError {
    match err {
        CallError::Spawn { program, source } => match source.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                ProviderError::NotInstalled {
                    tool: program,
                    hint: format!("{INSTALL_HINT} ({source})"),
                }
            }
            _ => ProviderError::Io(source),
        },
        CallError::TimedOut { program, after } => timed_out(
            op,
            name,
            format!("{program} gave no answer within {}s", after.as_secs()),
        ),
    }
}

/// A call that ran and exited non-zero.
pub fn classify(op: Operation, name: &str, out: &CallOutput) -> ProviderError {
    let detail = detail_of(out);
    let lower = detail.to_lowercase();
    if out.code == Some(EXIT_DAEMON_FAIL) || lower.contains(DAEMON_DOWN) {
        return ProviderError::Precondition(format!("{DAEMON_HINT} ({detail})"));
    }
    if lower.contains("already exists") {
        return ProviderError::NameTaken(name.to_owned());
    }
    // A deleted-but-not-purged instance still holds its name.
    if lower.contains("is deleted") {
        return match op {
            Operation::Launch => ProviderError::NameTaken(name.to_owned()),
            _ => ProviderError::NotFound(name.to_owned()),
        };
    }
    if lower.contains("does not exist") {
        return ProviderError::NotFound(name.to_owned());
    }
    if out.code != Some(EXIT_COMMAND_LINE) && RESOURCE_PHRASES.iter().any(|p| lower.contains(p)) {
        return ProviderError::Resources {
            name: name.to_owned(),
            detail,
        };
    }
    if out.code == Some(EXIT_TIMEOUT) || TIMEOUT_PHRASES.iter().any(|p| lower.contains(p)) {
        return timed_out(op, name, detail);
    }
    ProviderError::Failed {
        operation: op.as_str().to_owned(),
        name: name.to_owned(),
        detail,
    }
}

/// `Timeout` says "launching ... timed out" and callers treat it as "the
/// machine may still come up", which only makes sense for a launch; other
/// operations report a plain failure.
fn timed_out(op: Operation, name: &str, detail: String) -> ProviderError {
    match op {
        Operation::Launch => ProviderError::Timeout {
            name: name.to_owned(),
            detail,
        },
        _ => ProviderError::Failed {
            operation: op.as_str().to_owned(),
            name: name.to_owned(),
            detail: format!("timed out: {detail}"),
        },
    }
}

/// The client's message (stderr, else stdout) with the exit code, trimmed so
/// that an error line stays readable.
fn detail_of(out: &CallOutput) -> String {
    let text = if out.stderr.trim().is_empty() {
        out.stdout.trim()
    } else {
        out.stderr.trim()
    };
    let text: String = text.lines().take(8).collect::<Vec<_>>().join("; ");
    let code = out
        .code
        .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"));
    if text.is_empty() {
        code
    } else {
        format!("{text} ({code})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: i32, stderr: &str) -> CallOutput {
        CallOutput {
            code: Some(code),
            stdout: String::new(),
            stderr: stderr.to_owned(),
        }
    }

    #[test]
    fn exit_code_three_is_the_daemon_whatever_the_text() {
        let err = classify(Operation::List, "", &failed(3, "list failed: ?"));
        assert!(matches!(err, ProviderError::Precondition(_)), "{err:?}");
    }

    #[test]
    fn a_deleted_instance_holds_its_name_for_launch_only() {
        let out = failed(2, "launch failed: instance \"a\" is deleted");
        assert!(matches!(
            classify(Operation::Launch, "a", &out),
            ProviderError::NameTaken(_)
        ));
        assert!(matches!(
            classify(Operation::Start, "a", &out),
            ProviderError::NotFound(_)
        ));
    }

    #[test]
    fn command_line_errors_are_not_resource_shortages() {
        let out = failed(1, "Not enough arguments");
        assert!(matches!(
            classify(Operation::Launch, "a", &out),
            ProviderError::Failed { .. }
        ));
    }

    #[test]
    fn timeouts_are_launch_timeouts_only_for_launch() {
        let out = failed(2, "start failed: a: timed out waiting for response");
        assert!(matches!(
            classify(Operation::Launch, "a", &out),
            ProviderError::Timeout { .. }
        ));
        match classify(Operation::Start, "a", &out) {
            ProviderError::Failed { detail, .. } => assert!(detail.starts_with("timed out")),
            other => panic!("{other:?}"),
        }
    }
}
