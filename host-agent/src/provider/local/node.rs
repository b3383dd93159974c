//! One local node's files and processes: its directory under
//! `$HOSTCTL_HOME/local/<node>/`, its config file, and starting or stopping
//! its supervisor.

use super::state::NodeRecord;
use super::supervisor::{self, SUBCOMMAND};
use crate::exec::Cmd;
use crate::provider::{ProviderError, process};
use rustix::process::Signal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the agent's configuration lives under the node's root.
pub const CONFIG_REL: &str = "etc/hostctl/node-agent.yaml";
/// The supervisor's and the agent's logs under the node's root.
pub const LOG_DIR_REL: &str = "var/log/hostctl";
/// The agent's state directory under the node's root.
pub const STATE_DIR_REL: &str = "var/lib/hostctl-agent";

/// The operation in a failed start's message: "start supervisor for n1 failed: …".
const START_SUPERVISOR: &str = "start supervisor for";

/// How long a supervisor gets to stop its agent before being killed.
const SUPERVISOR_STOP: Duration = Duration::from_secs(8);

/// The paths of one node.
#[derive(Debug, Clone)]
pub struct NodeDir {
    /// `$HOSTCTL_HOME/local/<node>`.
    pub dir: PathBuf,
}

impl NodeDir {
    pub fn new(local_dir: &Path, node: &str) -> NodeDir {
        NodeDir {
            dir: local_dir.join(node),
        }
    }

    /// The node's `/`.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn config(&self) -> PathBuf {
        self.root().join(CONFIG_REL)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.root().join(LOG_DIR_REL)
    }

    pub fn supervisor_pidfile(&self) -> PathBuf {
        self.dir.join("supervisor.pid")
    }

    /// The running agent's pid, kept by the supervisor.
    pub fn agent_pidfile(&self) -> PathBuf {
        self.dir.join("node-agent.pid")
    }

    /// Creates the root directory and writes the agent's configuration
    /// (0600: it holds the enrolment token).
    pub fn write_config(&self, yaml: &str) -> Result<(), ProviderError> {
        use std::os::unix::fs::DirBuilderExt;
        let config = self.config();
        for dir in [config.parent(), Some(self.log_dir().as_path())]
            .into_iter()
            .flatten()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)?;
        }
        crate::fsutil::write_atomic(&config, yaml.as_bytes(), 0o600).map_err(|e| e.source)?;
        Ok(())
    }
}

/// What starting a supervisor needs besides the node's record.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The program that has the hidden `local-supervise` command (hostctl).
    pub supervisor_exe: PathBuf,
    pub ip: PathBuf,
    pub node_agent: PathBuf,
}

impl Launcher {
    /// Starts the node's supervisor detached and returns its pid. Fails when
    /// it dies at once, quoting the end of its log.
    pub async fn start(
        &self,
        name: &str,
        record: &NodeRecord,
        dir: &NodeDir,
    ) -> Result<i32, ProviderError> {
        let log_path = dir.log_dir().join("supervisor.log");
        std::fs::create_dir_all(dir.log_dir())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut child = Cmd::new(&self.supervisor_exe)
            .arg(SUBCOMMAND)
            .arg("--netns")
            .arg(&record.netns)
            .arg("--ip")
            .arg(&self.ip)
            .arg("--pidfile")
            .arg(dir.supervisor_pidfile())
            .arg("--agent-pidfile")
            .arg(dir.agent_pidfile())
            .arg("--agent-log")
            .arg(dir.log_dir().join("node-agent.console.log"))
            .arg("--")
            .arg(&self.node_agent)
            .arg("--config")
            .arg(dir.config())
            .spawner()
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn_std()
            .map_err(|e| ProviderError::failed_by(START_SUPERVISOR, name, e))?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ProviderError::failed(
                START_SUPERVISOR,
                name,
                format!("it exited at once ({status}): {}", tail(&log_path)),
            ));
        }
        Ok(child.id() as i32)
    }
}

/// True when the node's supervisor runs (checked against its command line,
/// so a reused pid does not count).
pub fn supervisor_alive(record: &NodeRecord, dir: &NodeDir) -> bool {
    supervisor_pid(record, dir)
        .is_some_and(|pid| process::alive_with(pid, &[SUBCOMMAND, record.netns.as_str()]))
}

fn supervisor_pid(record: &NodeRecord, dir: &NodeDir) -> Option<i32> {
    supervisor::read_pid(&dir.supervisor_pidfile()).or(record.supervisor_pid)
}

/// Stops the supervisor (which stops the agent); anything of its process
/// group still left after the grace period is killed.
pub async fn stop_supervisor(record: &NodeRecord, dir: &NodeDir) {
    let Some(pid) = supervisor_pid(record, dir) else {
        return;
    };
    let markers = [SUBCOMMAND, record.netns.as_str()];
    if process::alive_with(pid, &markers) {
        process::signal(pid, Signal::TERM);
        process::wait_until_gone(SUPERVISOR_STOP, || process::alive_with(pid, &markers)).await;
        // Ours for certain until now; past here the pid may be reused, but
        // the group id stays ours while any member lives.
        process::signal_group(pid, Signal::KILL);
    }
    let _ = std::fs::remove_file(dir.supervisor_pidfile());
    let _ = std::fs::remove_file(dir.agent_pidfile());
}

/// The last lines of a log, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
