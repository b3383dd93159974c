//! The real runner: programs started from an argv (never through a
//! shell), stdin closed, apt non-interactive.
//!
//! Every child is killed when the future waiting for it is dropped. The
//! agent's operations run in tasks of their own that a caller going away
//! does not cancel, so this only happens when the agent itself stops —
//! where systemd stops the unit's processes anyway.

use std::process::{Output, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;

use super::{CommandOutput, ExecError, Runner};

/// Runs real programs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

/// `argv` as a command: argv[0] looked up on PATH or a path, stdin closed,
/// and `DEBIAN_FRONTEND=noninteractive` so apt and dpkg (whose maintainer
/// scripts may ask questions) never wait for a terminal.
fn command(argv: &[String]) -> Result<std::process::Command, ExecError> {
    let (program, args) = argv.split_first().ok_or(ExecError::Empty)?;
    #[expect(
        clippy::disallowed_methods,
        reason = "the one door for running programs"
    )]
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null());
    Ok(cmd)
}

/// The same for the async runtime.
fn async_command(argv: &[String]) -> Result<tokio::process::Command, ExecError> {
    let mut cmd = tokio::process::Command::from(command(argv)?);
    cmd.kill_on_drop(true);
    Ok(cmd)
}

fn output(out: Output) -> CommandOutput {
    CommandOutput {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts a long-running child (`journalctl -f`) with stdout and stderr
/// piped for the caller to read; it is killed when the handle is dropped.
pub fn spawn(argv: &[String]) -> Result<Child, ExecError> {
    async_command(argv)?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ExecError::spawn(argv))
}

#[async_trait::async_trait]
impl Runner for SystemRunner {
    async fn run(&self, argv: &[String]) -> Result<CommandOutput, ExecError> {
        let child = async_command(argv)?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(ExecError::spawn(argv))?;
        let out = child.wait_with_output().await;
        out.map(output).map_err(ExecError::wait(argv))
    }

    async fn query(&self, argv: &[String]) -> Result<Option<CommandOutput>, ExecError> {
        self.run(argv).await.map(Some)
    }

    fn query_blocking(&self, argv: &[String]) -> Result<Option<CommandOutput>, ExecError> {
        let child = command(argv)?
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(ExecError::spawn(argv))?;
        let out = child.wait_with_output();
        out.map(|o| Some(output(o))).map_err(ExecError::wait(argv))
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, ExecError> {
        super::download::https_get(url).await
    }

    async fn run_streaming(
        &self,
        argv: &[String],
        lines: &mpsc::Sender<String>,
    ) -> Result<CommandOutput, ExecError> {
        let mut child = spawn(argv)?;
        let pump = |pipe: Option<Box<dyn AsyncRead + Unpin + Send>>| async move {
            let mut kept = String::new();
            let Some(pipe) = pipe else { return kept };
            let mut reader = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = lines.send(line.clone()).await;
                kept.push_str(&line);
                kept.push('\n');
            }
            kept
        };
        let stdout = child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn AsyncRead + Unpin + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn AsyncRead + Unpin + Send>);
        let (stdout, stderr) = tokio::join!(pump(stdout), pump(stderr));
        let status = child.wait().await.map_err(ExecError::wait(argv))?;
        Ok(CommandOutput {
            status: status.code().unwrap_or(-1),
            stdout,
            stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::argv;

    #[tokio::test]
    async fn runs_argv_without_a_shell_and_with_stdin_closed() -> Result<(), ExecError> {
        let out = SystemRunner
            .run(&argv(&[
                "sh",
                "-c",
                "cat; echo \"$DEBIAN_FRONTEND\" $0",
                "a;b",
            ]))
            .await?;
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "noninteractive a;b\n")
        );
        let blocking = SystemRunner.query_blocking(&argv(&["sh", "-c", "exit 3"]))?;
        assert_eq!(blocking.map(|o| o.status), Some(3));
        Ok(())
    }

    #[tokio::test]
    async fn streams_lines_and_names_what_cannot_start() -> Result<(), ExecError> {
        let (tx, mut rx) = mpsc::channel(8);
        let out = SystemRunner
            .run_streaming(&argv(&["sh", "-c", "echo one; echo two >&2"]), &tx)
            .await?;
        drop(tx);
        let mut seen = Vec::new();
        while let Some(line) = rx.recv().await {
            seen.push(line);
        }
        seen.sort();
        assert_eq!(seen, ["one", "two"]);
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("one\n", "two\n")
        );
        let missing = SystemRunner.run(&argv(&["/nonexistent/prog", "x"])).await;
        let text = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.starts_with("cannot run /nonexistent/prog x: "),
            "{text}"
        );
        assert!(matches!(SystemRunner.run(&[]).await, Err(ExecError::Empty)));
        Ok(())
    }
}
