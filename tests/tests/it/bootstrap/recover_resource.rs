//! `hostctl recover resource` end to end on the local provider: app1 made
//! by the real `up` (kubeadm and helm STAND-INs, the stand-in API server in
//! its control plane's namespace), a Deployment deleted, and no Argo CD on
//! mgmt (the topology has no mgmt: GitOps cannot own it), so Velero's
//! newest Completed backup of the daily schedule is the source. The test
//! plays Velero: the first Restore ends PartiallyFailed, so the first run
//! stops at that step; the rerun continues with the same backup, creates a
//! new Restore, which puts the Deployment back, and completes.

use super::Rig;
use super::velero_play::{RESTORES, VeleroPlay, cluster_state};
use serde_json::json;

const NET: u8 = 79;
const WEB: &str = "/apis/apps/v1/namespaces/shop/deployments/web";

#[test]
fn a_deleted_deployment_comes_back_from_the_newest_backup_after_a_failed_restore() {
    if !tests::can_run_netns("bootstrap") {
        return;
    }
    let rig = Rig::new(NET);
    let api = rig.api_with(cluster_state("app1"));
    rig.up_ok();
    let web = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "web", "namespace": "shop", "uid": "restored-uid"},
                     "spec": {"replicas": 1}});
    let velero = VeleroPlay::start(api.state.clone(), vec![(WEB.to_owned(), web)]);
    let args = [
        "resource",
        "app1",
        "deployment/web",
        "-n",
        "shop",
        "--within",
        "60",
    ];

    let (ok, first) = rig.recover(&args);
    assert!(!ok, "the first Restore fails:\n{first}");
    assert!(
        first.contains("[3/4] restore the resource … failed"),
        "{first}"
    );
    assert!(first.contains("PartiallyFailed"), "{first}");

    let (ok, second) = rig.recover(&args);
    eprintln!("first run:\n{first}\nrerun:\n{second}");
    assert!(ok, "the rerun completes:\n{second}");
    assert!(second.contains("resuming the recovery of"), "{second}");
    assert!(
        second.contains("[2/4] choose the source … done in an earlier run"),
        "{second}"
    );
    assert!(
        second.contains("[4/4] check it exists again … done in"),
        "{second}"
    );
    assert!(second.contains("(RTO 5m: met)"), "{second}");

    let names = velero.restores();
    assert_eq!(names.len(), 2, "{names:?}");
    let state = api.state.lock().expect("state");
    let restore = &state.objects[&format!("{RESTORES}/{}", names[1])];
    assert_eq!(
        restore["spec"]["backupName"], "velero-daily-20261203030000",
        "the newest Completed backup: {restore:#}"
    );
    assert_eq!(
        restore["spec"]["includedNamespaces"],
        json!(["shop"]),
        "{restore:#}"
    );
    assert!(state.objects.contains_key(WEB), "the Deployment is back");
    drop(state);
    drop(velero);
    api.stop();
    rig.env.finish();
}
