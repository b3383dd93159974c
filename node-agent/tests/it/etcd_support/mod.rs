//! Test support for etcd: the process ([`test_support::etcd`]), a stand-in for
//! the node's kubelet/containerd side of a restore, and the `Etcd` service
//! driven without a transport ([`rpc`]).

pub mod rpc;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use node_agent::etcd::restore::runtime::{ControlPlaneRuntime, RestoreCommand};
use node_agent::exec::ExecError;

pub use test_support::etcd::*;

/// The test stand-in for kubelet + containerd: etcd "runs" as a real
/// process while `<root>/etc/kubernetes/manifests/etcd.yaml` exists, on the
/// manifest's `etcd-data` hostPath (under root); the API server "runs"
/// while its manifest exists. `restore` runs Debian's etcd 3.4
/// `etcdctl snapshot restore` (3.4 has no etcdutl; same flags); `pull`
/// only records the image (every call is in [`StandInKubelet::calls`]).
pub struct StandInKubelet {
    root: PathBuf,
    pki: EtcdPki,
    client_port: u16,
    peer_port: u16,
    etcd: Mutex<Option<Etcd>>,
    /// Makes `restore` fail, to test a failure midway.
    pub fail_restore: bool,
    calls: Mutex<Vec<String>>,
}

pub const MANIFESTS: &str = "etc/kubernetes/manifests";

/// A kubeadm-shaped etcd manifest for member `name` on `peer_port`.
pub fn etcd_manifest(name: &str, peer_port: u16, data_dir: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --data-dir={data_dir}
    - --initial-advertise-peer-urls=http://127.0.0.1:{peer_port}
    - --initial-cluster={name}=http://127.0.0.1:{peer_port}
    - --name={name}
    image: registry.k8s.io/etcd:3.4.23-0
    name: etcd
  volumes:
  - hostPath:
      path: {data_dir}
      type: DirectoryOrCreate
    name: etcd-data
"#
    )
}

impl StandInKubelet {
    /// Writes the etcd and kube-apiserver manifests under `root` and
    /// starts etcd from them.
    pub fn start(root: &Path, fail_restore: bool) -> TestResult<StandInKubelet> {
        let pki = mint_etcd_pki(root)?;
        let manifests = root.join(MANIFESTS);
        std::fs::create_dir_all(&manifests)?;
        let peer_port = free_port()?;
        std::fs::write(
            manifests.join("etcd.yaml"),
            etcd_manifest("cp1", peer_port, "/var/lib/etcd"),
        )?;
        std::fs::write(manifests.join("kube-apiserver.yaml"), "kind: Pod\n")?;
        let kubelet = StandInKubelet::new(root, pki, peer_port, fail_restore)?;
        kubelet.sync()?;
        Ok(kubelet)
    }

    /// A node kubeadm has not initialised: etcd's PKI (kubeadm init would
    /// write it) but no manifests, so nothing runs.
    pub fn fresh(root: &Path) -> TestResult<StandInKubelet> {
        let pki = mint_etcd_pki(root)?;
        StandInKubelet::new(root, pki, free_port()?, false)
    }

    fn new(
        root: &Path,
        pki: EtcdPki,
        peer_port: u16,
        fail_restore: bool,
    ) -> TestResult<StandInKubelet> {
        Ok(StandInKubelet {
            root: root.to_owned(),
            pki,
            client_port: free_port()?,
            peer_port,
            etcd: Mutex::new(None),
            fail_restore,
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The peer port etcd gets when it starts from a manifest.
    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// `pull <image>` and `restore <image>`, in call order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: String) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(call);
        }
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.client_port)
    }

    pub fn pki_dir(&self) -> &Path {
        &self.pki.dir
    }

    /// Starts or stops etcd to match the manifests directory.
    pub fn sync(&self) -> TestResult {
        let manifest = self.root.join(MANIFESTS).join("etcd.yaml");
        let mut etcd = self.etcd.lock().map_err(|_| "poisoned")?;
        match (manifest.exists(), etcd.is_some()) {
            (true, false) => {
                let text = std::fs::read_to_string(&manifest)?;
                let m = node_agent::etcd::restore::manifest::EtcdManifest::parse(&text)?;
                let spec = EtcdSpec::loopback(
                    &m.name,
                    self.client_port,
                    self.peer_port,
                    node_agent::config::rooted(&self.root, &m.data_dir),
                );
                *etcd = Some(Etcd::start(&self.pki, &spec)?);
            }
            (false, true) => *etcd = None,
            _ => {}
        }
        Ok(())
    }

    /// Runs `f` with the running etcd.
    pub fn with_etcd<T>(&self, f: impl FnOnce(&Etcd) -> TestResult<T>) -> TestResult<T> {
        let etcd = self.etcd.lock().map_err(|_| "poisoned")?;
        f(etcd.as_ref().ok_or("etcd is not running")?)
    }
}

fn runtime_err(e: impl std::fmt::Display) -> ExecError {
    ExecError::Exit {
        command: "stand-in kubelet".into(),
        status: 1,
        tail: e.to_string(),
    }
}

#[async_trait::async_trait]
impl ControlPlaneRuntime for StandInKubelet {
    async fn running(&self, component: &str) -> Result<bool, ExecError> {
        tokio::task::block_in_place(|| self.sync()).map_err(runtime_err)?;
        Ok(match component {
            "etcd" => self.etcd.lock().map(|e| e.is_some()).unwrap_or(false),
            _ => self
                .root
                .join(MANIFESTS)
                .join(format!("{component}.yaml"))
                .exists(),
        })
    }

    async fn pull(&self, image: &str) -> Result<(), ExecError> {
        self.record(format!("pull {image}"));
        Ok(())
    }

    async fn restore(&self, command: &RestoreCommand) -> Result<(), ExecError> {
        self.record(format!("restore {}", command.image));
        if self.fail_restore {
            return Err(runtime_err("injected failure: etcdutl exited 1"));
        }
        let out = tokio::process::Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(command.args())
            .output()
            .await
            .map_err(runtime_err)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(runtime_err(String::from_utf8_lossy(&out.stderr)))
        }
    }
}
