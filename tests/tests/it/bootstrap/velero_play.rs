//! The test playing Velero (and kubeadm's record of the cluster) on the
//! stand-in API server, for the recovery suites: the daily schedule's
//! backups as Velero's sync from the bucket lists them, and a restore
//! controller that gives each new Restore a phase — the first one
//! PartiallyFailed, every later one Completed, putting back what it
//! restores.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tests::kube_api::State;

pub(super) const BACKUPS: &str = "/apis/velero.io/v1/namespaces/velero/backups";
pub(super) const RESTORES: &str = "/apis/velero.io/v1/namespaces/velero/restores";

/// A Backup of the daily schedule on hostctl's location.
fn backup(name: &str, completed: &str, phase: &str) -> (String, Value) {
    (
        format!("{BACKUPS}/{name}"),
        json!({
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": "velero",
                         "labels": {"velero.io/schedule-name": "velero-daily",
                                    "velero.io/storage-location": "default"}},
            "spec": {"storageLocation": "default", "includedNamespaces": ["*"]},
            "status": {"phase": phase, "completionTimestamp": completed},
        }),
    )
}

/// `cluster`'s API as the recoveries find it: kubeadm's record naming it,
/// the add-ons Ready, Velero's two collections served, and three backups
/// of the schedule (the newest PartiallyFailed, so the one before is the
/// newest usable: `velero-daily-20261203030000`).
pub(super) fn cluster_state(cluster: &str) -> State {
    let mut objects: BTreeMap<String, Value> =
        tests::bootstrap::ready_addon_objects(tests::bootstrap::role_of(cluster));
    objects.insert(
        "/api/v1/namespaces/kube-system/configmaps/kubeadm-config".to_owned(),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
               "data": {"ClusterConfiguration": format!(
                   "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: {cluster}\n")}}),
    );
    for (path, b) in [
        backup(
            "velero-daily-20261202030000",
            "2026-12-02T03:04:00Z",
            "Completed",
        ),
        backup(
            "velero-daily-20261203030000",
            "2026-12-03T03:05:00Z",
            "Completed",
        ),
        backup(
            "velero-daily-20261204030000",
            "2026-12-04T03:01:00Z",
            "PartiallyFailed",
        ),
    ] {
        objects.insert(path, b);
    }
    State {
        objects,
        lists: [BACKUPS.to_owned(), RESTORES.to_owned()].into(),
        ..State::default()
    }
}

/// Velero's restore controller, played until dropped.
pub(super) struct VeleroPlay {
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl VeleroPlay {
    /// Watches `state` for new Restores; a Completed one puts `restores`
    /// (path, object) into the cluster.
    pub(super) fn start(state: Arc<Mutex<State>>, restores: Vec<(String, Value)>) -> VeleroPlay {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                {
                    let mut s = state.lock().expect("state");
                    let pending: Vec<String> = s
                        .objects
                        .iter()
                        .filter(|(p, o)| {
                            p.starts_with(&format!("{RESTORES}/")) && o["status"].is_null()
                        })
                        .map(|(p, _)| p.clone())
                        .collect();
                    for path in pending {
                        let mut seen = seen2.lock().expect("seen");
                        let done = !seen.is_empty();
                        let phase = if done { "Completed" } else { "PartiallyFailed" };
                        let object = s.objects.get_mut(&path).expect("restore");
                        object["status"] =
                            json!({"phase": phase, "errors": u8::from(!done), "warnings": 2});
                        seen.push(object["metadata"]["name"].as_str().unwrap_or("").to_owned());
                        if done {
                            for (p, o) in &restores {
                                s.objects.insert(p.clone(), o.clone());
                            }
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        VeleroPlay { seen, stop }
    }

    /// The Restores it has seen, in order.
    pub(super) fn restores(&self) -> Vec<String> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for VeleroPlay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
