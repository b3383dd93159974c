//! The node's container side of a restore, behind a narrow trait so the
//! choreography can be tested without kubelet and containerd.
//!
//! Production ([`CriRuntime`]): `crictl ps` tells whether a static pod's
//! container runs; `crictl pull` fetches the etcd image where kubelet has
//! not yet (a seed restore, before `kubeadm init`); `etcdutl` runs from
//! the etcd image, through `ctr run` in containerd's `k8s.io` namespace
//! (where CRI keeps kubelet's images), with the snapshot's and the data
//! directory's parents bind-mounted at the same paths. That guarantees the restoring `etcdutl` has exactly the version
//! of the etcd that will open the data, and nothing is installed on the
//! node. (Debian's etcd 3.4 has no `etcdutl`; its `etcdctl snapshot
//! restore` takes the same flags, which is what the tests' stand-ins run:
//! `StandInKubelet` and `tests/fixtures/ctr-standin`.)

use std::path::{Path, PathBuf};

use crate::exec::{ExecError, Runner, SystemRunner, argv};

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
    async fn running(&self, component: &str) -> Result<bool, ExecError>;
    /// Makes `image` present in the runtime kubelet uses, pulling it if
    /// needed (before `kubeadm init` nothing has pulled the etcd image).
    async fn pull(&self, image: &str) -> Result<(), ExecError>;
    /// Restores the snapshot into a new data directory.
    async fn restore(&self, command: &RestoreCommand) -> Result<(), ExecError>;
}

/// kubelet + containerd through `crictl` and `ctr`.
#[derive(Debug, Default)]
pub struct CriRuntime;

/// Runs `argv` through the agent's runner; a non-zero exit is an error
/// carrying the output's tail.
async fn output(argv: &[String]) -> Result<String, ExecError> {
    Ok(SystemRunner.run(argv).await?.check(argv)?.stdout)
}

fn parent(p: &Path) -> String {
    p.parent()
        .unwrap_or_else(|| Path::new("/"))
        .display()
        .to_string()
}

#[async_trait::async_trait]
impl ControlPlaneRuntime for CriRuntime {
    async fn running(&self, component: &str) -> Result<bool, ExecError> {
        let name = format!("^{component}$");
        let args = argv(&["crictl", "ps", "--state", "running", "-q", "--name", &name]);
        Ok(!output(&args).await?.trim().is_empty())
    }

    /// `crictl pull <image>` (crictl's documented command; it prints
    /// `Image is up to date for <id>` whether or not it had to fetch).
    async fn pull(&self, image: &str) -> Result<(), ExecError> {
        output(&argv(&["crictl", "pull", image])).await.map(|_| ())
    }

    async fn restore(&self, command: &RestoreCommand) -> Result<(), ExecError> {
        let mut args = argv(&["ctr", "-n", "k8s.io", "run", "--rm"]);
        for dir in [parent(&command.snapshot), parent(&command.data_dir)] {
            args.push("--mount".into());
            args.push(format!("type=bind,src={dir},dst={dir},options=rbind:rw"));
        }
        args.push(command.image.clone());
        args.push(format!("hostctl-etcdutl-{}", std::process::id()));
        args.push("etcdutl".into());
        args.extend(command.args());
        output(&args).await.map(|_| ())
    }
}
