//! The seed mode of a restore (a control plane kubeadm has not initialised,
//! the lost-node recovery) through the `Etcd` service: on the stand-in
//! kubelet, and on the production `CriRuntime` running the `crictl`/`ctr`
//! stand-ins (`tests/fixtures/cri-standin`) from PATH.

use crate::etcd_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use etcd_support::rpc::{
    error_of, install_crypto, outcome, pull, restore_from, service, service_on,
};
use etcd_support::{
    EtcdSpec, MANIFESTS, StandInKubelet, TestResult, etcd_manifest, free_port, mint_etcd_pki,
};
use node_agent::etcd::restore::runtime::{ControlPlaneRuntime, CriRuntime};
use proto::v1::{
    ErrorCode, EtcdSeed, ProgressEvent, RestoreStart, SnapshotMeta, SnapshotTrailer,
    progress_event::Outcome,
};

const IMAGE: &str = "registry.k8s.io/etcd:3.4.23-0";

/// One way to spoil a seed.
type SeedChange = fn(&mut EtcdSeed);

/// A snapshot of cluster `app1` as the host streams it back.
struct Snapshot {
    meta: SnapshotMeta,
    bytes: Vec<u8>,
    trailer: SnapshotTrailer,
}

/// A snapshot holding `/registry/seed0..4`, taken through the agent of a
/// control plane under `dir` (its etcd stops when this returns).
async fn snapshot(dir: &Path) -> TestResult<Snapshot> {
    let kubelet = Arc::new(StandInKubelet::start(dir, false)?);
    kubelet.with_etcd(|e| e.put_keys("/registry/seed", 5))?;
    snapshot_of(dir, &kubelet).await
}

async fn snapshot_of(dir: &Path, kubelet: &Arc<StandInKubelet>) -> TestResult<Snapshot> {
    let file = dir.join("snap.db");
    let (meta, trailer) = pull(&service(dir, kubelet, true), &file).await?;
    Ok(Snapshot {
        meta,
        bytes: std::fs::read(&file)?,
        trailer,
    })
}

/// What the host's kubeadm configuration gives member `cp1` on `peer_port`.
fn seed(peer_port: u16) -> EtcdSeed {
    let peer = format!("http://127.0.0.1:{peer_port}");
    EtcdSeed {
        data_dir: "/var/lib/etcd".into(),
        name: "cp1".into(),
        initial_cluster: format!("cp1={peer}"),
        peer_urls: peer,
        image: IMAGE.into(),
    }
}

async fn seed_restore(
    svc: &node_agent::etcd::service::EtcdService,
    snap: &Snapshot,
    seed: EtcdSeed,
) -> TestResult<Vec<ProgressEvent>> {
    let start = RestoreStart {
        meta: Some(snap.meta.clone()),
        confirmed: true,
        seed: Some(seed),
    };
    restore_from(svc, start, snap.bytes.clone(), snap.trailer.clone()).await
}

fn done_message(events: &[ProgressEvent]) -> TestResult<&str> {
    match (events.last(), outcome(events)) {
        (Some(e), Some(Outcome::Done(_))) => Ok(&e.message),
        _ => Err(format!("expected success, got {events:#?}").into()),
    }
}

/// The phases in order, each once.
fn phases(events: &[ProgressEvent]) -> Vec<&str> {
    let mut p: Vec<&str> = events.iter().map(|e| e.phase.as_str()).collect();
    p.dedup();
    p
}

/// Entries of `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> TestResult<Vec<PathBuf>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with(prefix) {
            found.push(e.path());
        }
    }
    Ok(found)
}

/// What `kubeadm init` does next: writes etcd's manifest on the seeded
/// data directory, from which the stand-in kubelet starts etcd.
fn kubeadm_writes_etcd_manifest(root: &Path, node: &StandInKubelet) -> TestResult {
    let manifests = root.join(MANIFESTS);
    std::fs::create_dir_all(&manifests)?;
    std::fs::write(
        manifests.join("etcd.yaml"),
        etcd_manifest("cp1", node.peer_port(), "/var/lib/etcd"),
    )?;
    node.sync()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_restore_leaves_a_member_that_etcd_opens_with_the_snapshots_keys() -> TestResult {
    install_crypto();
    let (src, dst) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let snap = snapshot(src.path()).await?;
    let node = Arc::new(StandInKubelet::fresh(dst.path())?);
    let svc = service(dst.path(), &node, true);

    let events = seed_restore(&svc, &snap, seed(node.peer_port())).await?;
    let message = done_message(&events)?;
    assert_eq!(
        phases(&events),
        [
            "restore/check",
            "restore/receive",
            "restore/pull",
            "restore/etcdutl",
            "restore/done"
        ]
    );
    assert!(message.contains("/var/lib/etcd"), "{message}");
    assert!(
        message.contains(&format!("revision {}", snap.meta.revision)),
        "{message}"
    );
    assert!(message.contains("DirAvailable--var-lib-etcd"), "{message}");
    // The note kubeadm init reads to waive exactly that check.
    assert_eq!(
        node_agent::etcd::seeded::waived_checks(dst.path()),
        ["DirAvailable--var-lib-etcd"]
    );
    assert_eq!(
        node.calls(),
        [format!("pull {IMAGE}"), format!("restore {IMAGE}")]
    );
    let var_lib = dst.path().join("var/lib");
    assert_eq!(
        named(&var_lib, "hostctl-restore-")?,
        Vec::<PathBuf>::new(),
        "staged snapshot removed"
    );
    assert_eq!(
        named(&var_lib, "etcd-replaced-")?,
        Vec::<PathBuf>::new(),
        "nothing to move aside"
    );

    kubeadm_writes_etcd_manifest(dst.path(), &node)?;
    let keys = node.with_etcd(|e| e.ctl(&["get", "/registry/", "--prefix", "--keys-only"]))?;
    for i in 0..5 {
        assert!(keys.contains(&format!("/registry/seed{i}")), "{keys}");
    }
    assert_eq!(node.with_etcd(|e| e.revision())?, snap.meta.revision);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_holding_data_is_moved_aside_not_deleted() -> TestResult {
    install_crypto();
    let (src, dst) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let snap = snapshot(src.path()).await?;
    let node = Arc::new(StandInKubelet::fresh(dst.path())?);
    let old = dst.path().join("var/lib/etcd/member");
    std::fs::create_dir_all(&old)?;
    std::fs::write(old.join("left-by-someone"), "old data")?;
    let svc = service(dst.path(), &node, true);

    let events = seed_restore(&svc, &snap, seed(node.peer_port())).await?;
    let message = done_message(&events)?;
    let var_lib = dst.path().join("var/lib");
    let aside = named(&var_lib, "etcd-replaced-")?;
    let [aside] = aside.as_slice() else {
        return Err(format!("expected one aside directory, got {aside:?}").into());
    };
    assert_eq!(
        std::fs::read_to_string(aside.join("member/left-by-someone"))?,
        "old data"
    );
    let aside_name = aside.file_name().unwrap_or_default().to_string_lossy();
    assert!(message.contains(&*aside_name), "{message}");
    assert!(
        events
            .iter()
            .any(|e| e.phase == "restore/etcdutl" && e.message.contains(&*aside_name)),
        "{events:#?}"
    );
    assert!(var_lib.join("etcd/member/snap/db").is_file(), "restored");
    assert!(!var_lib.join("etcd/member/left-by-someone").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_kubeadm_initialised_refuses_a_seed() -> TestResult {
    install_crypto();
    let root = tempfile::tempdir()?;
    let node = Arc::new(StandInKubelet::start(root.path(), false)?);
    node.with_etcd(|e| e.put_keys("/k", 3))?;
    let snap = snapshot_of(root.path(), &node).await?;
    let svc = service(root.path(), &node, true);

    let events = seed_restore(&svc, &snap, seed(node.peer_port())).await?;
    let (phase, err) = error_of(&events)?;
    assert_eq!(phase, "restore/check");
    assert_eq!(err.code, ErrorCode::FailedPrecondition as i32);
    assert!(
        err.message
            .contains("kubeadm already initialised this node"),
        "{}",
        err.message
    );
    assert!(err.message.contains("without seed"), "{}", err.message);
    assert!(node.calls().is_empty(), "{:?}", node.calls());
    assert!(root.path().join("var/lib/etcd/member").is_dir());
    assert_eq!(
        named(&root.path().join("var/lib"), "etcd-replaced-")?.len(),
        0
    );
    node.with_etcd(|e| e.revision())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_seed_is_refused_before_anything_is_received() -> TestResult {
    install_crypto();
    let root = tempfile::tempdir()?;
    let node = Arc::new(StandInKubelet::fresh(root.path())?);
    let svc = service(root.path(), &node, true);
    let snap = Snapshot {
        meta: SnapshotMeta {
            cluster: "app1".into(),
            ..SnapshotMeta::default()
        },
        bytes: vec![7; 1000],
        trailer: SnapshotTrailer::default(),
    };
    let cases: [(SeedChange, &str); 3] = [
        (|s| s.data_dir = "var/lib/etcd".into(), "absolute"),
        (
            |s| s.initial_cluster = "other=http://127.0.0.1:2380".into(),
            "cp1=",
        ),
        (|s| s.image = String::new(), "image is empty"),
    ];
    for (change, says) in cases {
        let mut bad = seed(node.peer_port());
        change(&mut bad);
        let events = seed_restore(&svc, &snap, bad).await?;
        let (phase, err) = error_of(&events)?;
        assert_eq!(phase, "restore/check", "{says}");
        assert_eq!(err.code, ErrorCode::InvalidArgument as i32, "{says}");
        assert!(err.message.contains(says), "{says}: {}", err.message);
    }
    assert!(node.calls().is_empty(), "{:?}", node.calls());
    assert!(!root.path().join("var").exists(), "nothing staged");
    Ok(())
}

/// Set for the child run of [`cri_runtime_child`]: the stand-ins' state dir.
const CHILD: &str = "HOSTCTL_TEST_CRI_STANDIN_CHILD";

/// `CriRuntime` finds `crictl` and `ctr` on PATH, and the agent must not
/// change its own environment (it is shared by every thread), so the
/// test runs [`cri_runtime_child`] in a child of this test binary with
/// the stand-ins first on PATH.
#[test]
fn the_cri_standins_serve_cri_runtime_from_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (bin, state) = (dir.path().join("bin"), dir.path().join("state"));
    std::fs::create_dir_all(&bin)?;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::os::unix::fs::symlink(fixtures.join("crictl-standin"), bin.join("crictl"))?;
    std::os::unix::fs::symlink(fixtures.join("ctr-standin"), bin.join("ctr"))?;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(std::env::current_exe()?)
        .args(["--exact", "etcd_seed::cri_runtime_child", "--ignored"])
        .args(["--test-threads=1", "--nocapture"])
        .env("PATH", path)
        .env("CRI_STANDIN_DIR", &state)
        .env(CHILD, &state)
        .output()?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the child ran no test: {text}");
    Ok(())
}

/// The calls the stand-ins recorded: (program, argv).
fn standin_calls(state: &Path) -> TestResult<Vec<(String, Vec<String>)>> {
    let text = std::fs::read_to_string(state.join("calls.jsonl"))?;
    let mut calls = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let argv = v["argv"].as_array().ok_or("no argv")?;
        calls.push((
            v["program"].as_str().unwrap_or_default().to_owned(),
            argv.iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
        ));
    }
    Ok(calls)
}

#[ignore = "run by the_cri_standins_serve_cri_runtime_from_path, with the stand-ins on PATH"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_runtime_child() -> TestResult {
    let Some(state) = std::env::var_os(CHILD).map(PathBuf::from) else {
        eprintln!("{CHILD} is not set: run through the_cri_standins_serve_cri_runtime_from_path");
        return Ok(());
    };
    install_crypto();
    let (src, dst) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let snap = snapshot(src.path()).await?;
    let runtime = Arc::new(CriRuntime);
    assert!(
        !runtime.running("etcd").await?,
        "nothing runs before kubeadm init"
    );
    let svc = service_on(
        dst.path(),
        "https://127.0.0.1:9".into(),
        runtime.clone(),
        true,
    );
    let peer_port = free_port()?;

    std::fs::create_dir_all(&state)?;
    std::fs::write(
        state.join("control.json"),
        r#"{"ctr": {"fail": true, "times": 1}}"#,
    )?;
    let events = seed_restore(&svc, &snap, seed(peer_port)).await?;
    let (phase, err) = error_of(&events)?;
    assert_eq!(phase, "restore/etcdutl");
    assert_eq!(err.code, ErrorCode::CommandFailed as i32);
    assert!(
        err.message.contains("ctr: failed to create shim task"),
        "{}",
        err.message
    );
    let var_lib = dst.path().join("var/lib");
    assert!(!var_lib.join("etcd").exists());
    assert_eq!(
        named(&var_lib, "hostctl-restore-")?.len(),
        0,
        "staged snapshot removed"
    );

    let events = seed_restore(&svc, &snap, seed(peer_port)).await?;
    done_message(&events)?;
    let calls = standin_calls(&state)?;
    let programs: Vec<&str> = calls.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        programs,
        ["crictl", "crictl", "ctr", "crictl", "ctr"],
        "{calls:?}"
    );
    assert_eq!(calls[1].1, ["pull", IMAGE]);
    assert_eq!(calls[2].1[..4], ["-n", "k8s.io", "run", "--rm"]);
    assert!(calls[2].1.contains(&IMAGE.to_owned()), "{calls:?}");

    // The member `etcdctl` wrote through the ctr stand-in opens.
    let pki = mint_etcd_pki(dst.path())?;
    let spec = EtcdSpec::loopback("cp1", free_port()?, peer_port, var_lib.join("etcd"));
    let etcd = etcd_support::Etcd::start(&pki, &spec)?;
    let keys = etcd.ctl(&["get", "/registry/", "--prefix", "--keys-only"])?;
    assert!(keys.contains("/registry/seed4"), "{keys}");

    std::fs::write(
        state.join("control.json"),
        r#"{"crictl": {"running": ["etcd"]}}"#,
    )?;
    assert!(runtime.running("etcd").await?);
    assert!(!runtime.running("kube-apiserver").await?);
    Ok(())
}
