//! The Garage server as a process of the host (where Docker is absent,
//! as on this project's Linux CI; on a Mac the spec puts it in Docker
//! beside Harbor, docs/backup.md): started detached in its own session so
//! it outlives the `hostctl` that started it, found again by pid file and
//! command line (a pid alone may have been reused), stopped with SIGTERM
//! and, if it will not go, SIGKILL.

use super::error::StorageError;
use super::layout::Layout;
use crate::provider::process::{alive_with, signal, wait_until_gone};
use rustix::process::Signal;
use std::path::PathBuf;
use std::time::Duration;

/// The crate version `.ci/run` installs and the messages name.
pub const GARAGE_VERSION: &str = "2.5.0";

/// How long a stopping server may take before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// The `garage` binary: `HOSTCTL_GARAGE`, else `garage` on `PATH`.
pub fn binary() -> Result<PathBuf, StorageError> {
    crate::environment::GARAGE
        .os()
        .map(PathBuf::from)
        .or_else(|| crate::exec::find_program("garage"))
        .ok_or(StorageError::NoServer {
            version: GARAGE_VERSION,
        })
}

/// The server of one home's store.
pub struct Process {
    pub layout: Layout,
    /// The `garage` binary; `None`: [`binary`]'s lookup when it starts.
    pub binary: Option<PathBuf>,
}

impl Process {
    fn config_arg(&self) -> String {
        self.layout.config().display().to_string()
    }

    /// The running server's pid, if it runs.
    pub fn running(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.layout.pid())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        alive_with(pid, &[&self.config_arg(), "server"]).then_some(pid)
    }

    /// Starts the server unless it runs; returns whether it started it.
    pub fn start(&self) -> Result<bool, StorageError> {
        if self.running().is_some() {
            return Ok(false);
        }
        let binary = match &self.binary {
            Some(b) => b.clone(),
            None => binary()?,
        };
        let log_path = self.layout.log();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(StorageError::io(&log_path))?;
        let err = log.try_clone().map_err(StorageError::io(&log_path))?;
        // Its own process group: a Ctrl-C of the hostctl that started it
        // must not stop the store.
        let child = crate::exec::Cmd::new(&binary)
            .args(["-c", &self.config_arg(), "server"])
            .env("RUST_LOG", "garage=info")
            .spawner()
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn_std()
            .map_err(|e| StorageError::Config {
                what: format!("starting {}", binary.display()),
                reason: e.to_string(),
            })?;
        let pid = child.id().to_string();
        fsio::write_atomic(&self.layout.pid(), pid.as_bytes(), 0o600)?;
        Ok(true)
    }

    /// Stops the server if it runs; returns whether it was running.
    pub async fn stop(&self) -> Result<bool, StorageError> {
        let Some(pid) = self.running() else {
            let _ = std::fs::remove_file(self.layout.pid());
            return Ok(false);
        };
        signal(pid, Signal::TERM);
        if !wait_until_gone(STOP_WITHIN, || self.running().is_some()).await {
            signal(pid, Signal::KILL);
            wait_until_gone(STOP_WITHIN, || self.running().is_some()).await;
        }
        let _ = std::fs::remove_file(self.layout.pid());
        Ok(true)
    }
}

/// Where the server runs: a process of the host, or a container on the
/// host's Docker ([`super::compose`]).
pub enum Runtime {
    Process(Process),
    Container {
        layout: Layout,
        docker: std::sync::Arc<dyn crate::mirrors::docker::Docker>,
    },
}

impl Runtime {
    /// `process <pid>` or `container`, when it runs.
    pub async fn running(&self) -> Option<String> {
        match self {
            Runtime::Process(p) => p.running().map(|pid| format!("process {pid}")),
            Runtime::Container { layout, docker } => {
                let file = layout.compose();
                if !file.exists() {
                    return None;
                }
                let up = docker
                    .compose_ps(super::compose::PROJECT, &file)
                    .await
                    .ok()?
                    .iter()
                    .any(|c| c.service == "garage" && c.state == "running");
                up.then(|| "container".to_owned())
            }
        }
    }

    /// Starts the server unless it runs; returns whether it started it.
    pub async fn start(&self) -> Result<bool, StorageError> {
        match self {
            Runtime::Process(p) => p.start(),
            Runtime::Container { layout, docker } => {
                if self.running().await.is_some() {
                    return Ok(false);
                }
                docker
                    .compose_up(super::compose::PROJECT, &layout.compose())
                    .await?;
                Ok(true)
            }
        }
    }

    /// Stops the server if it runs (the data stays); returns whether it ran.
    pub async fn stop(&self) -> Result<bool, StorageError> {
        match self {
            Runtime::Process(p) => p.stop().await,
            Runtime::Container { layout, docker } => {
                let ran = self.running().await.is_some();
                if layout.compose().exists() {
                    docker
                        .compose_down(super::compose::PROJECT, &layout.compose())
                        .await?;
                }
                Ok(ran)
            }
        }
    }
}
