//! etcd snapshots end to end through the real host: the control-plane
//! agent runs in its node's network namespace, a real etcd (Debian's 3.4)
//! runs there too, kubeadm-style (TLS with client certificates, listening
//! on the node's loopback and address, its PKI at kubeadm's paths under the
//! node's root), and `hostctl etcd snapshot` stores a snapshot that
//! `etcdctl` accepts at etcd's revision, which `hostctl etcd list` shows.
//!
//! The node agent's configuration needs no `etcd` section for this: its
//! default endpoint (https://127.0.0.1:2379) is what kubeadm sets up.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;
use test_support::etcd::snapshot_status;
use tests::LocalEnv;

/// The node network of this suite: `10.251.9.0/24`.
const NET: u8 = 9;
const NODE: &str = "app1-cp";
const CLUSTER: &str = "app1";
/// The path `hostctl etcd snapshot` reports for `cluster` ("stored P" or,
/// if the schedule already shipped identical bytes, "already stored as P").
fn stored_path(output: &str, cluster: &str) -> PathBuf {
    let line = output
        .lines()
        .find(|l| l.starts_with(&format!("{cluster}: ")))
        .unwrap_or_else(|| panic!("no line for {cluster} in:\n{output}"));
    let rest = line
        .split_once(" stored ")
        .or_else(|| line.split_once(" already stored as "))
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("not a stored line: {line}"));
    PathBuf::from(rest.split(" (").next().unwrap_or(rest))
}

#[test]
fn hostctl_etcd_snapshot_stores_what_etcdctl_accepts_and_lists_it() {
    if !tests::can_run_netns("hostctl_etcd_snapshot_stores_what_etcdctl_accepts_and_lists_it") {
        return;
    }
    let env = LocalEnv::new(NET, &[NODE]);
    env.up(1);
    let etcd = env.start_node_etcd(NODE);
    etcd.put_keys("/registry/e2e/k", 25).expect("put keys");
    let revision = etcd.revision().expect("revision");

    let started = Instant::now();
    let out = env.hostctl_ok(&["etcd", "snapshot", CLUSTER]);
    eprintln!(
        "{out}snapshot took {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let path = stored_path(&out, CLUSTER);
    let dir = env.home().join("snapshots").join(CLUSTER);
    assert_eq!(path.parent(), Some(dir.as_path()), "{out}");
    assert!(path.is_file(), "{} missing", path.display());

    let status = snapshot_status(&path).expect("etcdctl snapshot status accepts it");
    assert_eq!(status["revision"].as_i64(), Some(revision), "{status}");
    assert!(status["totalKey"].as_i64().unwrap_or(0) >= 25, "{status}");

    let listed: Value =
        serde_json::from_str(&env.hostctl_ok(&["etcd", "list", "-o", "json"])).expect("JSON");
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .expect("file name");
    let entry = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["file"] == file)
        .unwrap_or_else(|| panic!("{file} not listed in {listed:#}"));
    assert_eq!(entry["cluster"], CLUSTER, "{entry:#}");
    assert_eq!(entry["node"], NODE, "{entry:#}");
    assert_eq!(entry["revision"].as_i64(), Some(revision), "{entry:#}");
    assert_eq!(
        entry["size"].as_u64(),
        std::fs::metadata(&path).ok().map(|m| m.len()),
        "{entry:#}"
    );

    drop(etcd);
    env.finish();
}
