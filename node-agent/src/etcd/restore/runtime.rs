//! The node's container side of a restore, behind a narrow trait so the
//! choreography can be tested without kubelet and containerd.
//!
//! Production ([`CriRuntime`]): `crictl ps` tells whether a static pod's
//! container runs; `etcdutl` runs from the etcd image kubelet already
//! pulled, through `ctr run` in containerd's `k8s.io` namespace, with the
//! snapshot's and the data directory's parents bind-mounted at the same
//! paths. That guarantees the restoring `etcdutl` has exactly the version
//! of the etcd that will open the data, and nothing is installed on the
//! node. (Debian's etcd 3.4 has no `etcdutl`; its `etcdctl snapshot
//! restore` takes the same flags, which is what the tests' stand-in runs.)

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// A failed runtime operation.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {output}")]
    Failed {
        program: String,
        status: String,
        output: String,
    },
}

/// What `etcdutl snapshot restore` needs; the paths are real paths on
/// this machine (already under the agent's `root`).
#[derive(Debug, Clone)]
pub struct RestoreCommand {
    pub snapshot: PathBuf,
    pub data_dir: PathBuf,
    pub name: String,
    pub initial_cluster: String,
    pub peer_urls: String,
    /// The etcd image named in the manifest.
    pub image: String,
}

impl RestoreCommand {
    /// `snapshot restore …` arguments, the same for `etcdutl` (3.5+) and
    /// `etcdctl` (3.4).
    pub fn args(&self) -> Vec<String> {
        vec![
            "snapshot".into(),
            "restore".into(),
            self.snapshot.display().to_string(),
            format!("--data-dir={}", self.data_dir.display()),
            format!("--name={}", self.name),
            format!("--initial-cluster={}", self.initial_cluster),
            format!("--initial-advertise-peer-urls={}", self.peer_urls),
        ]
    }
}

/// The kubelet/containerd side of a restore.
#[async_trait::async_trait]
pub trait ControlPlaneRuntime: Send + Sync {
    /// Whether a container of the static pod `component` (e.g. `etcd`,
    /// `kube-apiserver`) is running.
    async fn running(&self, component: &str) -> Result<bool, RuntimeError>;
    /// Restores the snapshot into a new data directory.
    async fn restore(&self, command: &RestoreCommand) -> Result<(), RuntimeError>;
}

/// kubelet + containerd through `crictl` and `ctr`.
#[derive(Debug, Default)]
pub struct CriRuntime;

/// Runs `program args…`, returning stdout; stderr goes into the error.
pub async fn output(program: &str, args: &[String]) -> Result<String, RuntimeError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| RuntimeError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        let tail: String = text
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(RuntimeError::Failed {
            program: program.to_owned(),
            status: out.status.to_string(),
            output: tail.trim().to_owned(),
        })
    }
}

fn parent(p: &Path) -> String {
    p.parent()
        .unwrap_or_else(|| Path::new("/"))
        .display()
        .to_string()
}

#[async_trait::async_trait]
impl ControlPlaneRuntime for CriRuntime {
    async fn running(&self, component: &str) -> Result<bool, RuntimeError> {
        let args: Vec<String> = ["ps", "--state", "running", "-q", "--name"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain([format!("^{component}$")])
            .collect();
        Ok(!output("crictl", &args).await?.trim().is_empty())
    }

    async fn restore(&self, command: &RestoreCommand) -> Result<(), RuntimeError> {
        let mut args: Vec<String> = vec!["-n".into(), "k8s.io".into(), "run".into(), "--rm".into()];
        for dir in [parent(&command.snapshot), parent(&command.data_dir)] {
            args.push("--mount".into());
            args.push(format!("type=bind,src={dir},dst={dir},options=rbind:rw"));
        }
        args.push(command.image.clone());
        args.push(format!("hostctl-etcdutl-{}", std::process::id()));
        args.push("etcdutl".into());
        args.extend(command.args());
        output("ctr", &args).await.map(|_| ())
    }
}
