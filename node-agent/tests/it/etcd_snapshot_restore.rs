//! Snapshot and restore through the node agent's `Etcd` service against a
//! real etcd (Debian's etcd 3.4, TLS + client certificates), with a
//! stand-in for kubelet/containerd on the restore side.

use crate::etcd_support;

use std::sync::Arc;

use etcd_support::rpc::{error_of, install_crypto, outcome, pull, restore, service};
use etcd_support::{MANIFESTS, StandInKubelet, TestResult, etcdctl, snapshot_status};
use node_agent::etcd::restore::manifest::EtcdManifest;
use proto::v1::etcd_server::Etcd;
use proto::v1::{ErrorCode, EtcdSnapshotRequest, progress_event::Outcome};
use tonic::Request;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_through_the_agent_is_a_file_etcdctl_accepts() -> TestResult {
    install_crypto();
    let root = tempfile::tempdir()?;
    let kubelet = Arc::new(StandInKubelet::start(root.path(), false)?);
    kubelet.with_etcd(|e| e.put_keys("/registry/a", 40))?;
    let revision = kubelet.with_etcd(|e| e.revision())?;
    let svc = service(root.path(), &kubelet, true);
    let file = root.path().join("snap.db");
    let (meta, trailer) = pull(&svc, &file).await?;

    assert_eq!(meta.cluster, "app1");
    assert_eq!(meta.node, "app1-cp");
    assert_eq!(meta.revision, revision);
    assert!(meta.revision_exact);
    assert!(meta.etcd_version.starts_with("3."), "{}", meta.etcd_version);
    let bytes = std::fs::read(&file)?;
    assert_eq!(trailer.size, bytes.len() as u64);
    assert_eq!(trailer.sha256, bytes[bytes.len() - 32..].to_vec());
    let status = snapshot_status(&file)?;
    assert_eq!(status["revision"].as_i64(), Some(revision), "{status}");
    assert!(status["totalKey"].as_i64().unwrap_or(0) >= 40, "{status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_brings_back_the_snapshot_into_a_new_data_dir() -> TestResult {
    install_crypto();
    let root = tempfile::tempdir()?;
    let kubelet = Arc::new(StandInKubelet::start(root.path(), false)?);
    kubelet.with_etcd(|e| e.put_keys("/registry/before", 5))?;
    let svc = service(root.path(), &kubelet, true);
    let file = root.path().join("snap.db");
    let (meta, trailer) = pull(&svc, &file).await?;
    kubelet.with_etcd(|e| e.put_keys("/registry/after", 3))?;
    // What an earlier restore, killed while receiving, left next to the
    // data directory: removed when the next restore starts.
    let staged = [
        root.path()
            .join("var/lib/hostctl-restore-20200101T000000Z.db.part"),
        root.path()
            .join("var/lib/hostctl-restore-20200101T000000Z.db"),
    ];
    for f in &staged {
        std::fs::write(f, vec![1u8; 64 * 1024])?;
    }

    let events = restore(&svc, meta.clone(), std::fs::read(&file)?, trailer, true).await?;
    assert!(
        matches!(outcome(&events), Some(Outcome::Done(_))),
        "{events:#?}"
    );
    for f in &staged {
        assert!(!f.exists(), "{} survived the next restore", f.display());
    }
    let phases: Vec<&str> = events.iter().map(|e| e.phase.as_str()).collect();
    for p in [
        "restore/check",
        "restore/receive",
        "restore/stop",
        "restore/etcdutl",
        "restore/start-etcd",
        "restore/verify",
        "restore/start-apiserver",
        "restore/done",
    ] {
        assert!(phases.contains(&p), "{p} missing from {phases:?}");
    }
    let manifests = root.path().join(MANIFESTS);
    let m = EtcdManifest::load(&manifests.join("etcd.yaml"))?;
    assert!(
        m.data_dir.starts_with("/var/lib/etcd-restored-"),
        "{}",
        m.data_dir
    );
    assert!(manifests.join("kube-apiserver.yaml").exists());
    assert!(
        root.path().join("var/lib/etcd/member").is_dir(),
        "old data dir kept"
    );
    let ep = kubelet.endpoint();
    let got = etcdctl(
        kubelet.pki_dir(),
        &ep,
        &["get", "/registry/", "--prefix", "--keys-only"],
    )?;
    assert!(got.contains("/registry/before4"), "{got}");
    assert!(!got.contains("/registry/after"), "{got}");
    assert_eq!(kubelet.with_etcd(|e| e.revision())?, meta.revision);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_damage_another_cluster_and_no_confirmation() -> TestResult {
    install_crypto();
    let root = tempfile::tempdir()?;
    let kubelet = Arc::new(StandInKubelet::start(root.path(), false)?);
    kubelet.with_etcd(|e| e.put_keys("/k", 5))?;
    let svc = service(root.path(), &kubelet, true);
    let file = root.path().join("snap.db");
    let (meta, trailer) = pull(&svc, &file).await?;
    let good = std::fs::read(&file)?;
    let manifest_before = std::fs::read(root.path().join(MANIFESTS).join("etcd.yaml"))?;

    let mut corrupted = good.clone();
    corrupted[good.len() / 2] ^= 0x40;
    let truncated = good[..good.len() - 1000].to_vec();
    let mut foreign = meta.clone();
    foreign.cluster = "app2".into();
    let cases = [
        ("corrupted", meta.clone(), corrupted, true, "sha256"),
        (
            "truncated",
            meta.clone(),
            truncated,
            true,
            "checksum not found",
        ),
        ("foreign", foreign, good.clone(), true, "app2"),
        ("unconfirmed", meta.clone(), good.clone(), false, "--yes"),
    ];
    for (name, m, bytes, confirmed, says) in cases {
        let events = restore(&svc, m, bytes, trailer.clone(), confirmed).await?;
        let (phase, err) = error_of(&events)?;
        assert!(err.message.contains(says), "{name}: {}", err.message);
        assert!(
            phase == "restore/check" || phase == "restore/receive",
            "{name}: {phase}"
        );
        assert_ne!(err.code, ErrorCode::Unspecified as i32);
        let now = std::fs::read(root.path().join(MANIFESTS).join("etcd.yaml"))?;
        assert_eq!(now, manifest_before, "{name}: manifests untouched");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_midway_rolls_back_to_the_old_data_so_the_restore_can_be_asked_again()
-> TestResult {
    install_crypto();
    let root = tempfile::tempdir()?;
    let kubelet = Arc::new(StandInKubelet::start(root.path(), true)?);
    kubelet.with_etcd(|e| e.put_keys("/k", 3))?;
    let svc = service(root.path(), &kubelet, true);
    let file = root.path().join("snap.db");
    let (meta, trailer) = pull(&svc, &file).await?;
    let manifest_before = std::fs::read(root.path().join(MANIFESTS).join("etcd.yaml"))?;
    let events = restore(&svc, meta, std::fs::read(&file)?, trailer, true).await?;
    let (phase, err) = error_of(&events)?;
    assert_eq!(phase, "restore/etcdutl");
    assert!(err.detail.contains("rolled back"), "{}", err.detail);
    assert!(err.detail.contains("can be run again"), "{}", err.detail);
    assert!(
        events.iter().any(|e| e.phase == "restore/rollback"),
        "{events:#?}"
    );
    assert!(
        root.path().join("var/lib/etcd/member").is_dir(),
        "old data dir kept"
    );
    // The control plane's manifests are back as they were, so kubelet
    // runs etcd on the old data again and a rerun finds them.
    assert_eq!(
        std::fs::read(root.path().join(MANIFESTS).join("etcd.yaml"))?,
        manifest_before
    );
    let now = EtcdManifest::load(&root.path().join(MANIFESTS).join("etcd.yaml"))?;
    assert_eq!(now.data_dir, "/var/lib/etcd");
    assert!(
        root.path()
            .join(MANIFESTS)
            .join("kube-apiserver.yaml")
            .exists(),
        "the API server's manifest is back"
    );
    // The aside directory keeps the originals as the record of the attempt.
    let aside = std::fs::read_dir(root.path().join("etc/kubernetes"))?
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("hostctl-restore-")
        })
        .ok_or("no aside directory")?;
    assert!(aside.path().join("etcd.yaml").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_snapshots() -> TestResult {
    install_crypto();
    let root = tempfile::tempdir()?;
    let kubelet = Arc::new(StandInKubelet::start(root.path(), false)?);
    let svc = service(root.path(), &kubelet, false);
    let err = svc
        .snapshot(Request::new(EtcdSnapshotRequest {}))
        .await
        .err()
        .ok_or("served")?;
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    Ok(())
}
