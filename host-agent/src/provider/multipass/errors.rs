//! Turning a failed `multipass` call into a [`ProviderError`] the caller can
//! act on. Multipass has no machine-readable errors: the client exits with
//! `CommandLineError=1`, `CommandFail=2`, `DaemonFail=3`, `Retry=4`, or 5 when
//! its own `--timeout` expires, and prints `"<command> failed: <message>"`
//! (k8s-bootstrap.md §4.3). So the class comes from the exit code where it is
//! decisive (3, 5) and otherwise from the daemon's documented messages.

use crate::exec::{self, Cmd, CommandOutput, ExecError};
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

/// A call that never produced output: the client is missing, hung, or
/// could not be waited for.
pub fn from_exec_error(op: Operation, name: &str, err: ExecError) -> ProviderError {
    match err {
        ExecError::Spawn {
            program, source, ..
        } if exec::is_missing_program(&source) => ProviderError::NotInstalled {
            tool: program.display().to_string(),
            hint: format!("{INSTALL_HINT} ({source})"),
            source: Some(source.into()),
        },
        ExecError::Timeout {
            ref program, after, ..
        } => {
            let detail = format!(
                "{} gave no answer within {}s",
                program.display(),
                after.as_secs()
            );
            timed_out(op, name, detail, Some(err))
        }
        other => ProviderError::failed_by(op.as_str(), name, other),
    }
}

/// A call (`cmd`) that ran and exited non-zero with `out`.
pub fn classify(op: Operation, name: &str, cmd: &Cmd, out: &CommandOutput) -> ProviderError {
    let detail = detail_of(out);
    let lower = detail.to_lowercase();
    if out.code() == Some(EXIT_DAEMON_FAIL) || lower.contains(DAEMON_DOWN) {
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
    if out.code() != Some(EXIT_COMMAND_LINE) && RESOURCE_PHRASES.iter().any(|p| lower.contains(p)) {
        return ProviderError::Resources {
            name: name.to_owned(),
            detail,
        };
    }
    let failure = out.exit_error(cmd);
    if out.code() == Some(EXIT_TIMEOUT) || TIMEOUT_PHRASES.iter().any(|p| lower.contains(p)) {
        return timed_out(op, name, detail, Some(failure));
    }
    ProviderError::Failed {
        operation: op.as_str().to_owned(),
        name: name.to_owned(),
        detail,
        source: Some(failure.into()),
    }
}

/// `Timeout` says "launching ... timed out" and callers treat it as "the
/// machine may still come up", which only makes sense for a launch; other
/// operations report a plain failure, which keeps `failure`.
fn timed_out(
    op: Operation,
    name: &str,
    detail: String,
    failure: Option<ExecError>,
) -> ProviderError {
    match op {
        Operation::Launch => ProviderError::Timeout {
            name: name.to_owned(),
            detail,
        },
        _ => ProviderError::Failed {
            operation: op.as_str().to_owned(),
            name: name.to_owned(),
            detail: format!("timed out: {detail}"),
            source: failure.map(Into::into),
        },
    }
}

/// The client's message (stderr, else stdout) with the exit code, trimmed so
/// that an error line stays readable.
fn detail_of(out: &CommandOutput) -> String {
    let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
    let text = if stderr.trim().is_empty() {
        stdout.trim()
    } else {
        stderr.trim()
    };
    let text: String = text.lines().take(8).collect::<Vec<_>>().join("; ");
    let code = out
        .code()
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

    fn failed(code: i32, stderr: &str) -> CommandOutput {
        CommandOutput::exited(code).with_stderr(stderr)
    }

    fn cmd() -> Cmd {
        Cmd::new("multipass").arg("launch")
    }

    #[test]
    fn exit_code_three_is_the_daemon_whatever_the_text() {
        let err = classify(Operation::List, "", &cmd(), &failed(3, "list failed: ?"));
        assert!(matches!(err, ProviderError::Precondition(_)), "{err:?}");
    }

    #[test]
    fn a_deleted_instance_holds_its_name_for_launch_only() {
        let out = failed(2, "launch failed: instance \"a\" is deleted");
        assert!(matches!(
            classify(Operation::Launch, "a", &cmd(), &out),
            ProviderError::NameTaken(_)
        ));
        assert!(matches!(
            classify(Operation::Start, "a", &cmd(), &out),
            ProviderError::NotFound(_)
        ));
    }

    #[test]
    fn command_line_errors_are_not_resource_shortages() {
        let out = failed(1, "Not enough arguments");
        let err = classify(Operation::Launch, "a", &cmd(), &out);
        assert!(matches!(err, ProviderError::Failed { .. }));
        // The message is Multipass's words; the source keeps the exit status.
        assert_eq!(
            err.to_string(),
            "launch a failed: Not enough arguments (exit 1)"
        );
        let source = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<ExecError>());
        match source {
            Some(ExecError::Exit { status, .. }) => assert_eq!(status.code(), Some(1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timeouts_are_launch_timeouts_only_for_launch() {
        let out = failed(2, "start failed: a: timed out waiting for response");
        assert!(matches!(
            classify(Operation::Launch, "a", &cmd(), &out),
            ProviderError::Timeout { .. }
        ));
        match classify(Operation::Start, "a", &cmd(), &out) {
            ProviderError::Failed { detail, .. } => assert!(detail.starts_with("timed out")),
            other => panic!("{other:?}"),
        }
    }
}
