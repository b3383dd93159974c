//! `hostctl recover etcd` through the real binary, up to what needs no
//! cluster: a snapshot of another cluster is refused at step 2 with the
//! file, the field and the fix; a run whose control-plane agent does not
//! answer fails at step 3 with the choice on record, and the rerun says it
//! resumes, skips steps 1–2 and keeps that snapshot even though a newer
//! one arrived; naming another snapshot is refused unless `--restart`.
//! (A rerun that completes needs a node agent that restores: see
//! docs/backup.md.)

use host_agent::snapshots::{SnapshotInfo, SnapshotStore};
use std::path::Path;
use std::process::{Command, Output};
use test_support::etcd::free_port;

fn hostctl(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hostctl"))
        .args(args)
        .current_dir(home)
        .env("HOSTCTL_HOME", home)
        .env_remove("HOSTCTL_TOPOLOGY")
        .output()
        .expect("hostctl runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A stored snapshot of app1's directory whose metadata names `cluster`.
fn plant(home: &Path, cluster: &str, file: &str) {
    let dir = SnapshotStore::new(home).cluster_dir("app1").unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), b"not a real snapshot").unwrap();
    let info = SnapshotInfo {
        cluster: cluster.into(),
        file: file.into(),
        node: format!("{cluster}-cp"),
        revision: 7,
        revision_exact: true,
        etcd_version: "3.6.5".into(),
        taken_at: file[..16].into(),
        taken_at_unix: 1_796_320_800,
        sha256: "ab".repeat(32),
        size: 19,
        origin: "on-demand".into(),
    };
    std::fs::write(
        dir.join(file).with_extension("json"),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();
}

#[test]
fn recover_etcd_refuses_another_clusters_snapshot_and_resumes_with_the_same_one() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = hostctl(dir.path(), &["--home", home.to_str().unwrap(), "init"]);
    assert!(out.status.success(), "{}", text(&out));
    // Nothing listens there: the control-plane agent is unreachable.
    let nowhere = format!("127.0.0.1:{}", free_port().unwrap());
    let recover = |extra: &[&str]| {
        let mut args = vec!["recover", "etcd", "app1", "--yes", "--address", &nowhere];
        args.extend_from_slice(extra);
        hostctl(&home, &args)
    };

    let out = hostctl(&home, &["recover", "etcd", "app1"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    let record = home.join("recover/app1-etcd.json");
    assert!(!record.exists(), "a refused run left a record");

    // mgmt's snapshot in app1's directory.
    plant(&home, "mgmt", "20261203T180000Z-rev7.db");
    let out = recover(&[]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    for part in [
        "[1/4] choose the snapshot … done in",
        "[2/4] check it is the cluster's … failed",
        "20261203T180000Z-rev7.json",
        "`cluster` is \"mgmt\"",
        "hostctl etcd list app1",
    ] {
        assert!(t.contains(part), "{part:?} not in:\n{t}");
    }
    assert!(!t.contains("[3/4]"), "it went on to restore:\n{t}");

    // app1's own snapshot, named, over --restart; the agent does not answer.
    plant(&home, "app1", "20261203T190000Z-rev8.db");
    let out = recover(&["--restart", "--snapshot", "20261203T190000Z"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    for part in [
        "[2/4] check it is the cluster's … done in",
        "[3/4] restore etcd through the control-plane agent … failed",
        "cannot reach the node agent",
        "the same command again continues from this step",
    ] {
        assert!(t.contains(part), "{part:?} not in:\n{t}");
    }
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(kept["source"], "20261203T190000Z-rev8.db", "{kept:#}");

    // A newer snapshot arrives; the rerun keeps the recorded one.
    plant(&home, "app1", "20261203T200000Z-rev9.db");
    let out = recover(&[]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    for part in [
        "resuming the recovery of app1",
        "[1/4] choose the snapshot … done in an earlier run",
        "[2/4] check it is the cluster's … done in an earlier run",
        "[3/4] restore etcd through the control-plane agent … failed",
    ] {
        assert!(t.contains(part), "{part:?} not in:\n{t}");
    }
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(kept["source"], "20261203T190000Z-rev8.db", "{kept:#}");

    // Asking for the newer one instead is refused, the record untouched.
    let out = recover(&["--snapshot", "20261203T200000Z-rev9.db"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("--restart") && t.contains("20261203T190000Z-rev8.db"),
        "{t}"
    );
    assert!(!t.contains("[1/4]"), "{t}");
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(kept["source"], "20261203T190000Z-rev8.db", "{kept:#}");
}
