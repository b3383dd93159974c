//! The recording STAND-IN for machines that are not VMs: records instead
//! of running.
//!
//! Each line of the file is `{"argv":[…]}` for a command or `{"fetch":url}`
//! for a download. Downloads return [`STAND_IN_KEY`], an armoured block that
//! is not a real key (apt never reads it: nothing runs apt). Queries answer
//! `None` — the stand-in cannot observe a machine — and are not recorded,
//! unless a test scripted an answer ([`RecordingRunner::answer`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{CommandOutput, ExecError, Runner};

/// Where the recording stand-in writes, relative to the node's root.
pub const RECORD_PATH: &str = "/var/log/hostctl/commands.jsonl";

/// What the stand-in returns for a download.
pub const STAND_IN_KEY: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n\
    mWhvc3RjdGwgcmVjb3JkaW5nIHN0YW5kLWluOiBubyBrZXkgd2FzIGZldGNoZWQ=\n\
    -----END PGP PUBLIC KEY BLOCK-----\n";

/// One recorded line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Recorded {
    /// A command's argv.
    Argv(Vec<String>),
    /// A download's URL.
    Fetch(String),
}

/// A scripted answer: commands (or queries) whose argv starts with
/// `prefix` answer `output`.
#[derive(Debug, Clone)]
struct Scripted {
    prefix: Vec<String>,
    output: CommandOutput,
}

/// Records commands and downloads; runs nothing.
#[derive(Debug)]
pub struct RecordingRunner {
    path: PathBuf,
    failures: Vec<Scripted>,
    answers: Vec<Scripted>,
    file: Mutex<()>,
}

fn scripted(prefix: &[&str], output: CommandOutput) -> Scripted {
    Scripted {
        prefix: super::argv(prefix),
        output,
    }
}

fn find<'a>(scripts: &'a [Scripted], argv: &[String]) -> Option<&'a CommandOutput> {
    scripts
        .iter()
        .find(|s| argv.starts_with(&s.prefix))
        .map(|s| &s.output)
}

impl RecordingRunner {
    /// Records to `path` (its directory is created on first use).
    pub fn new(path: PathBuf) -> Self {
        RecordingRunner {
            path,
            failures: Vec::new(),
            answers: Vec::new(),
            file: Mutex::new(()),
        }
    }

    /// Scripts a failure: a command whose argv starts with `prefix` exits
    /// with `status` and prints `stderr` (e.g. apt's "Unable to locate").
    pub fn fail_when(mut self, prefix: &[&str], status: i32, stderr: &str) -> Self {
        let output = CommandOutput {
            status,
            stdout: String::new(),
            stderr: stderr.to_owned(),
        };
        self.failures.push(scripted(prefix, output));
        self
    }

    /// Scripts a query's answer: a query whose argv starts with `prefix`
    /// succeeds printing `stdout` (e.g. `systemctl show` for the checks'
    /// tests) instead of answering `None`.
    pub fn answer(mut self, prefix: &[&str], stdout: &str) -> Self {
        let output = CommandOutput {
            stdout: stdout.to_owned(),
            ..CommandOutput::default()
        };
        self.answers.push(scripted(prefix, output));
        self
    }

    /// Reads back what was recorded (tests, and people debugging a local node).
    pub fn read(path: &Path) -> Result<Vec<Recorded>, ExecError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ExecError::record("reading", path)(e)),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| {
                    ExecError::record("parsing", path)(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        e,
                    ))
                })
            })
            .collect()
    }

    fn append(&self, entry: &Recorded) -> Result<(), ExecError> {
        let fail = |what| ExecError::record(what, &self.path);
        let line = serde_json::to_string(entry)
            .map_err(|e| fail("encoding a record for")(std::io::Error::other(e)))?;
        let _guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(ExecError::record("creating", dir))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(fail("opening"))?;
        writeln!(file, "{line}").map_err(fail("appending to"))
    }
}

#[async_trait::async_trait]
impl Runner for RecordingRunner {
    async fn run(&self, argv: &[String]) -> Result<CommandOutput, ExecError> {
        self.append(&Recorded::Argv(argv.to_vec()))?;
        Ok(find(&self.failures, argv).cloned().unwrap_or_default())
    }

    async fn query(&self, argv: &[String]) -> Result<Option<CommandOutput>, ExecError> {
        self.query_blocking(argv)
    }

    fn query_blocking(&self, argv: &[String]) -> Result<Option<CommandOutput>, ExecError> {
        Ok(find(&self.answers, argv).cloned())
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, ExecError> {
        self.append(&Recorded::Fetch(url.to_owned()))?;
        Ok(STAND_IN_KEY.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::argv;

    #[tokio::test]
    async fn records_in_order_and_answers_as_scripted() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log/commands.jsonl");
        let runner = RecordingRunner::new(path.clone())
            .fail_when(
                &["apt-get", "install"],
                100,
                "E: Unable to locate package x",
            )
            .answer(&["systemctl", "show"], "ActiveState=active\n");
        assert!(runner.run(&argv(&["apt-get", "update"])).await?.success());
        let failed = runner.run(&argv(&["apt-get", "install", "x"])).await?;
        assert_eq!(
            (failed.status, failed.stderr.as_str()),
            (100, "E: Unable to locate package x")
        );
        assert_eq!(
            runner.fetch("https://k/key").await?,
            STAND_IN_KEY.as_bytes()
        );
        assert_eq!(runner.query(&argv(&["dpkg-query", "-W"])).await?, None);
        let shown = runner.query_blocking(&argv(&["systemctl", "show", "kubelet"]))?;
        assert_eq!(
            shown.map(|o| o.stdout),
            Some("ActiveState=active\n".to_owned())
        );
        assert_eq!(
            RecordingRunner::read(&path)?,
            [
                Recorded::Argv(argv(&["apt-get", "update"])),
                Recorded::Argv(argv(&["apt-get", "install", "x"])),
                Recorded::Fetch("https://k/key".into()),
            ]
        );
        Ok(())
    }
}
