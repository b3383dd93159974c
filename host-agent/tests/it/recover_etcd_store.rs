//! `hostctl recover etcd`'s first step against a **real Garage server**:
//! the newest (or a named) snapshot of a cluster is fetched from the
//! `etcd` bucket into an empty home's snapshot store, hash-checked, and
//! lists like a snapshot the host took; a damaged object, metadata whose
//! digest is wrong, or metadata naming another cluster is refused and
//! nothing is left in the store.

use crate::storage_garage::{fixture, random_file};
use host_agent::recover::RecoverError;
use host_agent::recover::etcd::fetch;
use host_agent::snapshots::{SnapshotInfo, SnapshotStore};
use host_agent::storage::offsite;
use host_agent::storage::plan::ETCD_BUCKET;
use host_agent::storage::s3::S3;
use sha2::{Digest, Sha256};
use std::path::Path;

/// A snapshot stored as the host keeps it (`.db` and its metadata) in
/// `store`, for `cluster`, with the metadata's digest correct unless
/// `sha256` overrides it.
async fn stored(
    store: &SnapshotStore,
    cluster: &str,
    meta_cluster: &str,
    file: &str,
    sha256: Option<&str>,
) -> SnapshotInfo {
    let dir = store.cluster_dir(cluster).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let (size, digest) = etcd_file(&dir.join(file));
    let info = SnapshotInfo {
        cluster: meta_cluster.into(),
        file: file.into(),
        node: format!("{meta_cluster}-cp"),
        revision: 42,
        revision_exact: true,
        etcd_version: "3.6.5".into(),
        taken_at: file[..16].into(),
        taken_at_unix: 1_796_320_800,
        sha256: sha256.map_or(digest, str::to_owned),
        size,
        origin: "scheduled".into(),
    };
    std::fs::write(
        dir.join(file).with_extension("json"),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();
    info
}

/// Writes a file in etcd's snapshot format (`db ‖ sha256(db)`, the db a
/// whole number of 512-byte pages) with random contents; returns its size
/// and the database digest the host records.
fn etcd_file(path: &Path) -> (u64, String) {
    random_file(path, 512 << 10);
    let mut bytes = std::fs::read(path).unwrap();
    let digest = Sha256::digest(&bytes);
    bytes.extend_from_slice(&digest);
    std::fs::write(path, &bytes).unwrap();
    (bytes.len() as u64, hex::encode(digest))
}

/// Uploads one host file as `etcd/app1/<name>` (its own digest checked).
async fn put(client: &S3, dir: &Path, name: &str) {
    offsite::upload_file(
        client,
        ETCD_BUCKET,
        &format!("app1/{name}"),
        &dir.join(name),
    )
    .await
    .unwrap();
}

/// Every file, dot-files included, in a home's `snapshots/app1`.
fn left_in(store: &SnapshotStore) -> Vec<String> {
    let dir = store.cluster_dir("app1").unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_snapshot_is_fetched_checked_and_listed_and_damaged_ones_leave_nothing() {
    let Some(f) = fixture("recover etcd fetches from a real Garage") else {
        return;
    };
    f.storage.up().await.expect("up");
    let host = f.storage.host_client().unwrap();

    // The host that took the snapshots copied them to the bucket.
    let origin_home = tempfile::tempdir().unwrap();
    let origin = SnapshotStore::new(origin_home.path());
    let older = stored(&origin, "app1", "app1", "20261201T180000Z-rev40.db", None).await;
    let newest = stored(&origin, "app1", "app1", "20261203T180000Z-rev42.db", None).await;
    let sent = offsite::upload_etcd(&host, &origin, "app1").await.unwrap();
    assert_eq!(sent.len(), 4);

    // The damaged host: an empty home.
    let home = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(home.path());
    let got = fetch(&host, &store, "app1", None).await.expect("fetch");
    assert_eq!(got.info, newest);
    assert_eq!(got.object, "etcd/app1/20261203T180000Z-rev42.db");
    assert!(!got.already_on_host);
    // The metadata's digest is the database's (the file less etcd's
    // 32-byte trailer), its size the whole file's.
    let bytes = std::fs::read(&got.path).unwrap();
    assert_eq!(bytes.len() as u64, newest.size);
    assert_eq!(
        hex::encode(Sha256::digest(&bytes[..bytes.len() - 32])),
        newest.sha256
    );
    let origin_dir = origin.cluster_dir("app1").unwrap();
    assert_eq!(
        std::fs::read(&got.path).unwrap(),
        std::fs::read(origin_dir.join(&newest.file)).unwrap()
    );
    // It lists like a snapshot the host took (`hostctl etcd list`).
    assert_eq!(store.list("app1").unwrap(), std::slice::from_ref(&newest));
    assert_eq!(
        left_in(&store),
        ["20261203T180000Z-rev42.db", "20261203T180000Z-rev42.json"]
    );
    // Again: the host has that very file, nothing is written.
    let again = fetch(&host, &store, "app1", None).await.unwrap();
    assert!(again.already_on_host);

    // A different snapshot uploaded under the older one's name afterwards
    // (its own digest, so the store accepts it): refused against the
    // metadata, and nothing is left.
    let planted = tempfile::tempdir().unwrap();
    etcd_file(&planted.path().join(&older.file));
    put(&host, planted.path(), &older.file).await;
    let home = tempfile::tempdir().unwrap();
    let empty = SnapshotStore::new(home.path());
    let err = fetch(&host, &empty, "app1", Some("20261201"))
        .await
        .expect_err("a replaced body was fetched");
    assert!(matches!(err, RecoverError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("sha256"), "{err}");
    assert_eq!(left_in(&empty), Vec::<String>::new());
    assert!(empty.list("app1").unwrap().is_empty());

    // A truncated copy (no trailing hash) under that name: not a snapshot.
    random_file(&planted.path().join(&older.file), 512 << 10);
    put(&host, planted.path(), &older.file).await;
    let err = fetch(&host, &empty, "app1", Some("20261201"))
        .await
        .expect_err("a truncated snapshot was fetched");
    assert!(matches!(err, RecoverError::Damaged { .. }), "{err}");
    assert_eq!(left_in(&empty), Vec::<String>::new());

    // Metadata whose digest is wrong: refused, nothing left.
    let bad = tempfile::tempdir().unwrap();
    let bad_store = SnapshotStore::new(bad.path());
    let wrong = "0".repeat(64);
    stored(
        &bad_store,
        "app1",
        "app1",
        "20261204T180000Z-rev44.db",
        Some(&wrong),
    )
    .await;
    let bad_dir = bad_store.cluster_dir("app1").unwrap();
    put(&host, &bad_dir, "20261204T180000Z-rev44.db").await;
    put(&host, &bad_dir, "20261204T180000Z-rev44.json").await;
    let err = fetch(&host, &empty, "app1", None)
        .await
        .expect_err("a snapshot not matching its metadata was fetched");
    assert!(matches!(err, RecoverError::Mismatch { .. }), "{err}");
    assert_eq!(left_in(&empty), Vec::<String>::new());

    // Metadata under app1/ that names mgmt: the wrong-cluster refusal.
    stored(
        &bad_store,
        "app1",
        "mgmt",
        "20261205T180000Z-rev45.db",
        None,
    )
    .await;
    put(&host, &bad_dir, "20261205T180000Z-rev45.db").await;
    put(&host, &bad_dir, "20261205T180000Z-rev45.json").await;
    let err = fetch(&host, &empty, "app1", None)
        .await
        .expect_err("mgmt's snapshot was fetched for app1");
    assert!(matches!(err, RecoverError::WrongCluster { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("etcd/app1/20261205T180000Z-rev45.json") && text.contains("`cluster`"),
        "{text}"
    );
    assert_eq!(left_in(&empty), Vec::<String>::new());
}
