//! `hostctl recover etcd` end to end on the local provider, through the
//! real node agent's restore: app1 made by the real `up` (STAND-INs as the
//! rest of the suite), a real etcd run by the test's kubelet play from the
//! control plane's `etcd.yaml`, the `crictl`/`ctr` STAND-INs on the
//! agent's PATH. Keys are written, `hostctl etcd snapshot` stores the
//! snapshot, another key is written. The first recovery's restore fails
//! midway (the `ctr` STAND-IN refuses once): the agent rolls back to the
//! old data by itself. The rerun restores (etcd moves to the restored data
//! directory) but the API server's `/readyz` fails at step 4; the last
//! rerun continues at step 4 without restoring again and completes; etcd
//! holds the keys of the snapshot and not the later one.

use super::Rig;
use super::kubelet_play::{KubeletPlay, Node, etcd_manifest};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const NET: u8 = 80;

#[test]
fn a_damaged_etcd_is_restored_through_the_node_agent_and_the_rerun_only_waits() {
    if !tests::can_run_netns("bootstrap") {
        return;
    }
    let mut rig = Rig::new(NET);
    let cri = rig.with_cri_stand_ins();
    let api = rig.api();
    rig.up_ok();
    let record = rig.env.local_state().nodes[&rig.cp].clone();
    let address = IpAddr::V4(record.address);
    std::fs::write(
        record.root.join("etc/kubernetes/manifests/etcd.yaml"),
        etcd_manifest(&rig.cp, address, "/var/lib/etcd"),
    )
    .expect("etcd manifest");
    let kubelet = KubeletPlay::start(
        Node {
            name: rig.cp.clone(),
            root: record.root.clone(),
            netns: record.netns.clone(),
            address,
            cri,
        },
        1,
    );
    let ctl = |args: &[&str]| KubeletPlay::ctl(&record.root, address, args);
    let deadline = Instant::now() + Duration::from_secs(180);
    while kubelet.started.lock().expect("started").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the kubelet play never started etcd"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for i in 0..10 {
        ctl(&["put", &format!("/registry/e2e/before{i}"), "v"]);
    }
    rig.env.hostctl_ok(&["etcd", "snapshot", "app1"]);
    ctl(&["put", "/registry/e2e/after", "v"]);

    // The first restore fails midway (`etcdutl` exits 1): the agent puts
    // the original manifests back, and etcd runs on the old data again.
    let (ok, failed) = rig.recover(&["etcd", "app1", "--api-within", "5"]);
    assert!(!ok, "the restore fails:\n{failed}");
    assert!(failed.contains("[restore/rollback]"), "{failed}");
    assert!(
        failed.contains("[3/4] restore etcd through the control-plane agent … failed"),
        "{failed}"
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    while kubelet.started.lock().expect("started").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "etcd was not restarted on the old data"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ctl(&["get", "/registry/e2e/after"]);

    // The rerun restores, but the API server does not come back in time.
    api.state.lock().expect("state").readyz_down = true;
    let (ok, first) = rig.recover(&["etcd", "app1", "--api-within", "5"]);
    assert!(!ok, "step 4 fails:\n{first}");
    assert!(
        first.contains("[3/4] restore etcd through the control-plane agent … done"),
        "{first}"
    );
    assert!(
        first.contains("[4/4] wait for the API server … failed"),
        "{first}"
    );
    let started = kubelet.started.lock().expect("started").clone();
    // etcd: first on the old data, again on it after the rollback, then on
    // the restored data.
    assert_eq!(started.len(), 3, "{started:?}");
    assert_eq!(started[0], started[1], "the rollback's etcd is the old one");
    assert!(
        started[2].to_string_lossy().contains("-restored-"),
        "{started:?}"
    );

    api.state.lock().expect("state").readyz_down = false;
    let (ok, second) = rig.recover(&["etcd", "app1", "--api-within", "60"]);
    eprintln!("first run:\n{first}\nrerun:\n{second}");
    assert!(ok, "the rerun completes:\n{second}");
    assert!(
        second.contains(
            "[3/4] restore etcd through the control-plane agent … done in an earlier run"
        ),
        "{second}"
    );
    assert!(second.contains("(RTO 30m: met)"), "{second}");
    assert_eq!(
        kubelet.started.lock().expect("started").len(),
        3,
        "the last rerun restored again"
    );
    let keys = ctl(&["get", "/registry/e2e/", "--prefix", "--keys-only"]);
    assert_eq!(
        keys.lines().filter(|l| l.contains("before")).count(),
        10,
        "{keys}"
    );
    assert!(
        !keys.contains("after"),
        "written after the snapshot: {keys}"
    );

    drop(kubelet);
    api.stop();
    rig.env.finish();
}
