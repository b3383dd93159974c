//! Running local commands (`systemctl`) behind a trait, so checks can be
//! tested with canned answers instead of the test machine's systemd.

use std::process::{Command, Stdio};

/// What a finished command printed and whether it succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit status 0.
    pub success: bool,
    /// Standard output, lossily decoded.
    pub stdout: String,
}

/// Runs a program to completion (called from the blocking pool).
pub trait CommandRunner: Send + Sync {
    /// Runs `program args…`; an error means it could not be started.
    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<CommandOutput>;
}

/// The real thing: `std::process::Command` with stdin closed.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<CommandOutput> {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()?;
        Ok(CommandOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        })
    }
}
