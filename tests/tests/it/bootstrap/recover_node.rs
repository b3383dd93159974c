//! `hostctl recover node` end to end on the local provider: a cluster made
//! by the real `up` (kubeadm and helm STAND-INs, the stand-in API server in
//! the control plane's namespace), a real etcd on the control plane whose
//! snapshot the host stores, then the control plane's machine is lost —
//! its agent killed, its network namespace and its disk gone. The
//! recovery fails once midway (the `ctr` STAND-IN refuses the first
//! restore) and the rerun continues from that step with the same snapshot
//! and completes. It proves the restored etcd data was in place when the
//! kubeadm stand-in started `init` (and that init waived exactly kubeadm's
//! data-directory check), that a real etcd opens the restored data with
//! the keys written before the snapshot, and that the worker was not
//! joined again (it keeps its certificates).

use super::Rig;
use serde_json::Value;
use tests::bootstrap::calls;

const NET: u8 = 76;
const KEYS: &str = "/registry/recovery/k";

#[test]
fn a_lost_control_plane_is_recreated_with_its_etcd_restored_before_kubeadm_starts_it() {
    if !tests::can_run_netns("bootstrap") {
        return;
    }
    let mut rig = Rig::new(NET);
    let cri = rig.with_cri_stand_ins();
    let api = rig.api();
    rig.up_ok();
    let (cp, worker) = (rig.cp.clone(), rig.worker.clone());

    // The cluster's state: keys in a real etcd on the control plane, and
    // the host's snapshot of it.
    let etcd = rig.env.start_node_etcd(&cp);
    etcd.put_keys(KEYS, 20).expect("put keys");
    let revision = etcd.revision().expect("revision");
    rig.env.hostctl_ok(&["etcd", "snapshot", "app1"]);
    drop(etcd);

    // The control plane is lost; its API server with it.
    api.stop();
    rig.lose_machine(&cp);
    let api = rig.api();

    // First attempt: the restore on the new machine fails.
    std::fs::write(
        cri.join("control.json"),
        r#"{"ctr": {"fail": true, "times": 1}}"#,
    )
    .expect("control");
    let (ok, first) = rig.recover_with_up(&["node", &cp, "--api-within", "60"]);
    assert!(!ok, "the first attempt must fail:\n{first}");
    assert!(
        first.contains("[4/7] recreate the machine (same name, address and PKI) … done"),
        "{first}"
    );
    assert!(
        first.contains("[5/7] restore etcd onto it before kubeadm runs … failed"),
        "{first}"
    );
    assert!(
        first.contains("the same command again continues from this step"),
        "{first}"
    );
    assert!(
        rig.kubeadm_calls(&cp).is_empty(),
        "kubeadm ran before etcd was restored"
    );

    // The rerun continues with the same snapshot and completes.
    let (ok, second) = rig.recover_with_up(&["node", &cp, "--api-within", "60"]);
    eprintln!("{second}");
    assert!(ok, "the rerun must complete:\n{second}");
    assert!(second.contains("resuming the recovery of"), "{second}");
    for step in [
        "[1/7] choose the snapshot … done in an earlier run",
        "[4/7] recreate the machine (same name, address and PKI) … done in an earlier run",
        "[5/7] restore etcd onto it before kubeadm runs … done in",
        "[7/7] wait for the API server … done in",
    ] {
        assert!(second.contains(step), "{step}:\n{second}");
    }
    assert!(second.contains("(RTO 1h: met)"), "{second}");

    // kubeadm init on the new machine found the restored data in place and
    // waived exactly kubeadm's data-directory check.
    let inits: Vec<Value> = calls(&rig.root(&cp).join("kubeadm-standin/calls.jsonl"))
        .into_iter()
        .filter(|c| c["argv"][0] == "init")
        .collect();
    assert_eq!(inits.len(), 1, "{inits:#?}");
    assert!(
        inits[0]["etcd_data"]["member_db_bytes"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "no restored etcd data when init started: {inits:#?}"
    );
    assert!(
        inits[0]["argv"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a == "--ignore-preflight-errors=DirAvailable--var-lib-etcd"),
        "{inits:#?}"
    );
    // The worker kept its certificates: joined once, by the first `up`.
    assert_eq!(rig.kubeadm_calls(&worker), ["join"], "worker rejoined");

    // The restored data is the snapshot's: a real etcd opens it and has
    // the keys written before the snapshot, at its revision or later.
    let etcd = rig.env.start_node_etcd(&cp);
    let got = etcd
        .ctl(&["get", "--prefix", KEYS, "--keys-only"])
        .expect("get");
    assert_eq!(got.lines().filter(|l| !l.is_empty()).count(), 20, "{got}");
    assert!(etcd.revision().expect("revision") >= revision);
    drop(etcd);

    api.stop();
    rig.env.finish();
}
