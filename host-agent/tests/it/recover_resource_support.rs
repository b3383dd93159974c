//! The lab of `recover_resource`: a home with a loopback topology of its
//! own, test-support's STAND-IN API server at mgmt's and app1's endpoints
//! (each on its own runtime, so one can go away), and a thread playing
//! Velero's and Argo CD's controllers on them.

use host_agent::cluster_config::cluster::API_SERVER_PORT;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::kube_api::{self, State};

pub(crate) const RESTORES: &str = "/apis/velero.io/v1/namespaces/velero/restores";
pub(crate) const BACKUPS: &str = "/apis/velero.io/v1/namespaces/velero/backups";
pub(crate) const APPS: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications";
pub(crate) const WEB: &str = "/apis/apps/v1/namespaces/shop/deployments/web";
pub(crate) const PLATFORM_CM: &str = "/api/v1/namespaces/kube-public/configmaps/hostctl-platform";

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn has_all(t: &str, parts: &[&str]) {
    for part in parts {
        assert!(t.contains(part), "{part:?} not in:\n{t}");
    }
}

/// What the test's Velero does with a Restore it has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Velero {
    Complete,
    Fail,
    /// Accepts it and keeps it `InProgress`.
    Hold,
}

/// A lab: the home, one stand-in API server per cluster (each on its own
/// runtime, so one can go away), and the controllers' thread.
pub(crate) struct Lab {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) net: u8,
    pub(crate) mgmt: Arc<Mutex<State>>,
    pub(crate) app1: Arc<Mutex<State>>,
    pub(crate) servers: Vec<Option<tokio::runtime::Runtime>>,
    pub(crate) velero: Arc<Mutex<Velero>>,
    /// What the test's Velero puts back (path, object), per backup.
    pub(crate) backed_up: Arc<Mutex<Vec<(String, String, Value)>>>,
    pub(crate) stop: Arc<AtomicBool>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(crate) fn ip(net: u8, host: u8) -> String {
    format!("127.{net}.0.{host}")
}

pub(crate) fn kubeadm_config(cluster: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
           "data": {"ClusterConfiguration": format!(
               "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                clusterName: {cluster}\nkubernetesVersion: v1.35.2\n")}})
}

pub(crate) fn backup(name: &str, schedule: &str, done: &str) -> (String, Value) {
    (
        format!("{BACKUPS}/{name}"),
        json!({"apiVersion": "velero.io/v1", "kind": "Backup",
               "metadata": {"name": name, "namespace": "velero",
                            "labels": {"velero.io/schedule-name": schedule,
                                       "velero.io/storage-location": "default"}},
               "spec": {"storageLocation": "default", "includedNamespaces": ["*"]},
               "status": {"phase": "Completed", "completionTimestamp": done,
                          "errors": 0, "warnings": 0}}),
    )
}

pub(crate) fn application(net: u8, tracked: &[(&str, &str, &str, &str)]) -> (String, Value) {
    let resources: Vec<Value> = tracked
        .iter()
        .map(|(group, kind, ns, name)| {
            json!({"group": group, "version": "v1", "kind": kind, "namespace": ns, "name": name,
                   "status": "OutOfSync", "health": {"status": "Missing"}})
        })
        .collect();
    (
        format!("{APPS}/platform-app1"),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
               "metadata": {"name": "platform-app1", "namespace": "argocd"},
               "spec": {"project": "platform",
                        "source": {"repoURL": "https://192.168.64.1:8445/platform.git",
                                   "targetRevision": "main", "path": "app"},
                        "destination": {"server": format!("https://{}:6443", ip(net, 20))}},
               "status": {"resources": resources,
                          "sync": {"status": "OutOfSync"}, "health": {"status": "Missing"}}}),
    )
}

pub(crate) fn web_deployment() -> Value {
    kube_api::deployment("shop", "web", true).1
}

impl Lab {
    /// `hostctl init` in a fresh directory, the topology moved to
    /// 127.`net`.0.0/24, and both clusters' stand-ins serving; app1's
    /// stand-in says it is `app1_says`.
    pub(crate) fn new(net: u8, app1_says: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let lab = Lab {
            dir,
            net,
            mgmt: Arc::default(),
            app1: Arc::default(),
            servers: vec![None, None],
            velero: Arc::new(Mutex::new(Velero::Complete)),
            backed_up: Arc::default(),
            stop: Arc::default(),
        };
        let out = lab.hostctl(&["init"]);
        assert!(out.status.success(), "{}", text(&out));
        let file = lab.dir.path().join("hostctl.yaml");
        let default = std::fs::read_to_string(&file).unwrap();
        let looped = default
            .replace("cidr: 192.168.64.0/24", &format!("cidr: 127.{net}.0.0/24"))
            .replace("addressing: provider", "addressing: fixed");
        assert!(looped.contains("addressing: fixed"), "{default}");
        std::fs::write(&file, looped).unwrap();
        let config = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config".to_owned();
        lab.mgmt
            .lock()
            .unwrap()
            .objects
            .insert(config.clone(), kubeadm_config("mgmt"));
        lab.app1
            .lock()
            .unwrap()
            .objects
            .insert(config, kubeadm_config(app1_says));
        // The kinds Velero and Argo CD serve.
        lab.mgmt.lock().unwrap().lists.insert(APPS.into());
        let mut app1 = lab.app1.lock().unwrap();
        app1.lists.insert(BACKUPS.into());
        app1.lists.insert(RESTORES.into());
        drop(app1);
        let mut lab = lab;
        lab.serve(0);
        lab.serve(1);
        lab.controllers();
        lab
    }

    pub(crate) fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hostctl"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("HOSTCTL_HOME", self.home())
            .env_remove("HOSTCTL_TOPOLOGY");
        c
    }

    pub(crate) fn hostctl(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("hostctl runs")
    }

    pub(crate) fn recover(&self, what: &[&str]) -> Output {
        let mut args = vec!["recover", "resource", "app1"];
        args.extend_from_slice(what);
        args.push("--yes");
        self.hostctl(&args)
    }

    /// Serves cluster `which` (0 mgmt, 1 app1) at its endpoint.
    pub(crate) fn serve(&mut self, which: usize) {
        let (cluster, host, state) = match which {
            0 => ("mgmt", 10, self.mgmt.clone()),
            _ => ("app1", 20, self.app1.clone()),
        };
        let pki = certs::Pki::open(&self.home()).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let ip = ip(self.net, host);
        let addr = SocketAddr::new(ip.parse().unwrap(), API_SERVER_PORT);
        rt.block_on(kube_api::serve(&pki, cluster, addr, &[&ip], state));
        self.servers[which] = Some(rt);
    }

    /// Stops cluster `which`'s API server (its runtime goes).
    pub(crate) fn stop_serving(&mut self, which: usize) {
        if let Some(rt) = self.servers[which].take() {
            rt.shutdown_background();
        }
    }

    /// The thread playing Velero on app1 and Argo CD on mgmt.
    fn controllers(&self) {
        let (mgmt, app1, velero, backed_up, stop) = (
            self.mgmt.clone(),
            self.app1.clone(),
            self.velero.clone(),
            self.backed_up.clone(),
            self.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                play_velero(&app1, *velero.lock().unwrap(), &backed_up.lock().unwrap());
                play_argocd(&mgmt, &app1, &backed_up.lock().unwrap());
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }

    pub(crate) fn objects(&self, state: &Arc<Mutex<State>>, prefix: &str) -> Vec<Value> {
        let s = state.lock().unwrap();
        s.objects
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("{prefix}/")))
            .map(|(_, o)| o.clone())
            .collect()
    }

    pub(crate) fn writes(state: &Arc<Mutex<State>>) -> Vec<(String, String)> {
        let s = state.lock().unwrap();
        s.requests
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| (r.method.clone(), r.path.clone()))
            .collect()
    }

    pub(crate) fn record(&self, scenario: &str) -> PathBuf {
        self.home().join(format!("recover/app1-{scenario}.json"))
    }
}

/// Velero: a Restore without a final phase is acted on as `mode` says;
/// completing one puts back what `backed_up` holds for its backup.
fn play_velero(app1: &Arc<Mutex<State>>, mode: Velero, backed_up: &[(String, String, Value)]) {
    let mut s = app1.lock().unwrap();
    let open: Vec<(String, Value)> = s
        .objects
        .iter()
        .filter(|(p, o)| {
            p.starts_with(&format!("{RESTORES}/"))
                && matches!(
                    o["status"]["phase"].as_str(),
                    None | Some("New" | "InProgress")
                )
        })
        .map(|(p, o)| (p.clone(), o.clone()))
        .collect();
    for (path, mut restore) in open {
        restore["status"] = match mode {
            Velero::Hold => json!({"phase": "InProgress"}),
            Velero::Fail => json!({"phase": "PartiallyFailed", "errors": 1, "warnings": 2}),
            Velero::Complete => {
                let backup = restore["spec"]["backupName"].as_str().unwrap_or_default();
                for (from, at, object) in backed_up {
                    if from == backup {
                        s.objects
                            .entry(at.clone())
                            .or_insert_with(|| object.clone());
                    }
                }
                json!({"phase": "Completed", "errors": 0, "warnings": 1})
            }
        };
        s.objects.insert(path, restore);
    }
}

/// Argo CD: an Application's pending operation runs and succeeds, and
/// what `backed_up` holds under `argocd:<app>` is applied to app1.
fn play_argocd(
    mgmt: &Arc<Mutex<State>>,
    app1: &Arc<Mutex<State>>,
    backed_up: &[(String, String, Value)],
) {
    let mut s = mgmt.lock().unwrap();
    let pending: Vec<(String, Value)> = s
        .objects
        .iter()
        .filter(|(p, o)| p.starts_with(&format!("{APPS}/")) && !o["operation"].is_null())
        .map(|(p, o)| (p.clone(), o.clone()))
        .collect();
    for (path, mut app) in pending {
        let operation = app["operation"].take();
        app.as_object_mut().unwrap().remove("operation");
        app["status"]["operationState"] = json!({
            "operation": operation, "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "startedAt": "2026-12-04T19:00:00Z", "finishedAt": "2026-12-04T19:00:02Z"});
        let name = app["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for (from, at, object) in backed_up {
            if *from == format!("argocd:{name}") {
                app1.lock()
                    .unwrap()
                    .objects
                    .insert(at.clone(), object.clone());
            }
        }
        s.objects.insert(path, app);
    }
}

/// Waits (bounded) until `f` holds.
pub(crate) fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
}
