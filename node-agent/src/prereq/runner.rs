//! The one door through which the prerequisite steps touch the machine
//! beyond writing files: commands (argv only — never a shell string) and the
//! one download (the repository key).
//!
//! [`SystemRunner`] is the real thing, for VMs. [`RecordingRunner`] is a
//! STAND-IN for machines that are not VMs (the local provider, CI, tests):
//! it runs nothing and downloads nothing, appends what it was asked to a
//! JSONL file and answers success (or a scripted failure), so a local node
//! never installs packages or reloads sysctls on the developer's machine.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::PrereqError;

/// `commandRunner` in the agent config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandRunnerKind {
    /// Run commands and downloads for real (VMs).
    #[default]
    Real,
    /// Record them to `<root>/var/log/hostctl/commands.jsonl` instead
    /// (the local provider; never touches the machine).
    Record,
}

/// Where the recording stand-in writes, relative to the node's root.
pub const RECORD_PATH: &str = "/var/log/hostctl/commands.jsonl";

/// What a finished command printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit status; -1 when killed by a signal.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// Runs commands and downloads on behalf of the steps.
#[async_trait::async_trait]
pub trait Runner: Send + Sync {
    /// Runs `argv` to completion; `Err` only when it could not be started.
    async fn run(&self, argv: &[String]) -> Result<CommandOutput, PrereqError>;

    /// Runs a read-only query (e.g. `dpkg-query`). `None` means this runner
    /// cannot observe the machine, so the caller relies on its own record.
    async fn query(&self, argv: &[String]) -> Result<Option<CommandOutput>, PrereqError>;

    /// Downloads `url` (HTTPS) and returns the body.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, PrereqError>;

    /// Runs `argv` like [`Runner::run`], also handing every output line
    /// (stdout and stderr) to `lines` as it is printed, so a long command
    /// (kubeadm) can report progress while it runs. The default sends the
    /// lines once the command has finished (the recording stand-in prints
    /// nothing anyway).
    async fn run_streaming(
        &self,
        argv: &[String],
        lines: &tokio::sync::mpsc::Sender<String>,
    ) -> Result<CommandOutput, PrereqError> {
        let out = self.run(argv).await?;
        for line in out.stdout.lines().chain(out.stderr.lines()) {
            let _ = lines.send(line.to_owned()).await;
        }
        Ok(out)
    }
}

/// The runner `commandRunner` selects for a node whose root is `root`.
pub fn for_config(kind: CommandRunnerKind, root: &Path) -> std::sync::Arc<dyn Runner> {
    match kind {
        CommandRunnerKind::Real => std::sync::Arc::new(SystemRunner),
        CommandRunnerKind::Record => std::sync::Arc::new(RecordingRunner::new(
            crate::config::rooted(root, RECORD_PATH),
        )),
    }
}

/// Runs real programs (stdin closed, apt non-interactive).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

#[async_trait::async_trait]
impl Runner for SystemRunner {
    async fn run(&self, argv: &[String]) -> Result<CommandOutput, PrereqError> {
        let Some((program, args)) = argv.split_first() else {
            return Err(PrereqError::InvalidRequest("empty command".into()));
        };
        let out = tokio::process::Command::new(program)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| PrereqError::Spawn {
                command: argv.join(" "),
                source,
            })?;
        Ok(CommandOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn query(&self, argv: &[String]) -> Result<Option<CommandOutput>, PrereqError> {
        self.run(argv).await.map(Some)
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, PrereqError> {
        super::fetch::https_get(url).await
    }

    async fn run_streaming(
        &self,
        argv: &[String],
        lines: &tokio::sync::mpsc::Sender<String>,
    ) -> Result<CommandOutput, PrereqError> {
        run_streaming(argv, lines).await
    }
}

/// A scripted answer of the recording stand-in.
#[derive(Debug, Clone)]
struct Scripted {
    prefix: Vec<String>,
    status: i32,
    stderr: String,
}

/// STAND-IN for machines that are not VMs: records instead of running.
///
/// Each line of the file is `{"argv":[…]}` for a command or `{"fetch":url}`
/// for a download. Downloads return [`STAND_IN_KEY`], an armoured block that
/// is not a real key (apt never reads it: nothing runs apt). Queries answer
/// `None` — the stand-in cannot observe a machine — and are not recorded.
#[derive(Debug)]
pub struct RecordingRunner {
    path: PathBuf,
    scripted: Vec<Scripted>,
    file: Mutex<()>,
}

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

impl RecordingRunner {
    /// Records to `path` (its directory is created on first use).
    pub fn new(path: PathBuf) -> Self {
        RecordingRunner {
            path,
            scripted: Vec::new(),
            file: Mutex::new(()),
        }
    }

    /// Scripts a failure: a command whose argv starts with `prefix` exits
    /// with `status` and prints `stderr` (e.g. apt's "Unable to locate").
    pub fn fail_when(mut self, prefix: &[&str], status: i32, stderr: &str) -> Self {
        self.scripted.push(Scripted {
            prefix: prefix.iter().map(|s| (*s).to_owned()).collect(),
            status,
            stderr: stderr.to_owned(),
        });
        self
    }

    /// Reads back what was recorded (tests, and people debugging a local node).
    pub fn read(path: &Path) -> Result<Vec<Recorded>, PrereqError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PrereqError::io("reading", path)(e)),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| {
                    PrereqError::io("parsing", path)(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        e,
                    ))
                })
            })
            .collect()
    }

    fn append(&self, entry: &Recorded) -> Result<(), PrereqError> {
        let line = serde_json::to_string(entry).map_err(|e| {
            PrereqError::io("encoding a record for", &self.path)(std::io::Error::other(e))
        })?;
        let _guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(PrereqError::io("creating", dir))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(PrereqError::io("opening", &self.path))?;
        writeln!(file, "{line}").map_err(PrereqError::io("appending to", &self.path))
    }
}

#[async_trait::async_trait]
impl Runner for RecordingRunner {
    async fn run(&self, argv: &[String]) -> Result<CommandOutput, PrereqError> {
        self.append(&Recorded::Argv(argv.to_vec()))?;
        let scripted = self.scripted.iter().find(|s| argv.starts_with(&s.prefix));
        Ok(
            scripted.map_or_else(CommandOutput::default, |s| CommandOutput {
                status: s.status,
                stdout: String::new(),
                stderr: s.stderr.clone(),
            }),
        )
    }

    async fn query(&self, _argv: &[String]) -> Result<Option<CommandOutput>, PrereqError> {
        Ok(None)
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, PrereqError> {
        self.append(&Recorded::Fetch(url.to_owned()))?;
        Ok(STAND_IN_KEY.as_bytes().to_vec())
    }
}

/// Spawns `argv` with both output pipes read line by line into `lines`
/// (and kept for the result), so the caller sees progress as it happens.
async fn run_streaming(
    argv: &[String],
    lines: &tokio::sync::mpsc::Sender<String>,
) -> Result<CommandOutput, PrereqError> {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let spawn_err = |source| PrereqError::Spawn {
        command: argv.join(" "),
        source,
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(PrereqError::InvalidRequest("empty command".into()));
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    let pump = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| async move {
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
        .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    let (stdout, stderr) = tokio::join!(pump(stdout), pump(stderr));
    let status = child.wait().await.map_err(spawn_err)?;
    Ok(CommandOutput {
        status: status.code().unwrap_or(-1),
        stdout,
        stderr,
    })
}
