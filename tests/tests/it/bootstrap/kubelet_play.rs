//! The test playing a control plane's kubelet for the suites that restore
//! etcd through the real node agent: it runs a real etcd (Debian's 3.4) as
//! the static pod `etcd.yaml` in the node's manifests directory says — on
//! that manifest's data directory, stopped when the manifest is moved
//! away — and tells the `crictl` STAND-IN what runs (`control.json`'s
//! `crictl.running`), as `crictl ps` would after kubelet's sync.

use serde_json::json;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use test_support::etcd::{Etcd, EtcdPki, EtcdSpec, mint_etcd_pki_for};

/// kubeadm's stacked etcd manifest for `node` at `address`, data in
/// `data_dir` (the fields the node agent's restore reads).
pub(super) fn etcd_manifest(node: &str, address: IpAddr, data_dir: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  \
         containers:\n  - command:\n    - etcd\n    - --advertise-client-urls=https://{address}:2379\n    \
         - --data-dir=/var/lib/etcd\n    - --initial-advertise-peer-urls=https://{address}:2380\n    \
         - --initial-cluster={node}=https://{address}:2380\n    - --name={node}\n    \
         image: registry.k8s.io/etcd:3.6.6-0\n    name: etcd\n    volumeMounts:\n    \
         - mountPath: /var/lib/etcd\n      name: etcd-data\n  volumes:\n  - hostPath:\n      \
         path: {data_dir}\n      type: DirectoryOrCreate\n    name: etcd-data\n"
    )
}

/// The kubelet, played until dropped.
pub(super) struct KubeletPlay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The data directories etcd was started on, in order.
    pub(super) started: Arc<Mutex<Vec<PathBuf>>>,
}

/// What one node's kubelet needs.
pub(super) struct Node {
    pub(super) name: String,
    pub(super) root: PathBuf,
    pub(super) netns: String,
    pub(super) address: IpAddr,
    /// The `crictl` stand-in's state directory.
    pub(super) cri: PathBuf,
}

fn write_running(cri: &Path, running: &[&str], ctr_failures: u32) {
    let part = cri.join("control.json.part");
    let mut body = json!({"crictl": {"running": running}});
    if ctr_failures > 0 {
        body["ctr"] = json!({"fail": true, "times": ctr_failures});
    }
    let body = body.to_string();
    std::fs::write(&part, body).expect("write control");
    std::fs::rename(&part, cri.join("control.json")).expect("control");
}

impl KubeletPlay {
    /// Plays kubelet for `node`; the first `ctr_failures` runs of `ctr`
    /// (the restore's `etcdutl`) fail.
    pub(super) fn start(node: Node, ctr_failures: u32) -> KubeletPlay {
        let pki: EtcdPki = mint_etcd_pki_for(&node.root, &[node.address]).expect("etcd PKI");
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(Mutex::new(Vec::new()));
        let (stop2, started2) = (stop.clone(), started.clone());
        let thread = std::thread::spawn(move || {
            let manifests = node.root.join("etc/kubernetes/manifests");
            let mut etcd: Option<(Etcd, PathBuf)> = None;
            while !stop2.load(Ordering::Relaxed) {
                let want = node_agent::etcd::restore::manifest::EtcdManifest::load(
                    &manifests.join("etcd.yaml"),
                )
                .ok()
                .map(|m| {
                    // kubelet pulled the pod's image to run it.
                    let images = node.cri.join("images.json");
                    if !images.exists() {
                        std::fs::write(&images, json!([m.image]).to_string()).expect("images");
                    }
                    node.root.join(m.data_dir.trim_start_matches('/'))
                });
                if etcd.as_ref().map(|(_, d)| d) != want.as_ref() {
                    etcd = None; // stops the one that runs
                    if let Some(data_dir) = want {
                        let spec = EtcdSpec {
                            name: node.name.clone(),
                            client_port: 2379,
                            peer_port: 2380,
                            data_dir: data_dir.clone(),
                            address: node.address,
                            netns: Some(node.netns.clone()),
                        };
                        let e = Etcd::start(&pki, &spec).expect("etcd from its manifest");
                        started2.lock().expect("started").push(data_dir.clone());
                        etcd = Some((e, data_dir));
                    }
                }
                let mut running = Vec::new();
                if etcd.is_some() {
                    running.push("etcd");
                }
                if manifests.join("kube-apiserver.yaml").exists() {
                    running.push("kube-apiserver");
                }
                write_running(&node.cri, &running, ctr_failures);
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        KubeletPlay {
            stop,
            thread: Some(thread),
            started,
        }
    }

    /// The etcd running now, for a test's `etcdctl` (a client on the
    /// node's address with the minted client certificate).
    pub(super) fn ctl(root: &Path, address: IpAddr, args: &[&str]) -> String {
        test_support::etcd::etcdctl(
            &root.join("etc/kubernetes/pki/etcd"),
            &format!("https://{address}:2379"),
            args,
        )
        .expect("etcdctl")
    }
}

impl Drop for KubeletPlay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
