//! The host's object store against a **real Garage server** (crates.io
//! `garage` 2.5.0, `.ci/run`): hostctl's own `storage` code writes the
//! configuration, starts the server on loopback, applies the layout and
//! creates the buckets, keys and grants through the admin API; then S3
//! calls signed by hostctl upload, list, download and check snapshots, and
//! a cluster's key is refused on another cluster's bucket.

use host_agent::snapshots::{SnapshotInfo, SnapshotStore};
use host_agent::storage::config::Listeners;
use host_agent::storage::error::StorageError;
use host_agent::storage::layout::Layout;
use host_agent::storage::offsite;
use host_agent::storage::plan::{ETCD_BUCKET, HOST_KEY, velero_bucket, velero_key};
use host_agent::storage::service::Storage;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use test_support::etcd::free_port;
use test_support::garage::garage_or_skip;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A store under a fresh home; stopped (not purged) on drop. Also the
/// store of `recover_etcd_store`'s and `vault_snapshot`'s tests.
pub(crate) struct Fixture {
    _home: tempfile::TempDir,
    pub(crate) storage: Storage,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Its own thread and runtime: the test's runtime is still current.
        let storage = &self.storage;
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let _ = rt.block_on(storage.down(false));
            });
        });
    }
}

pub(crate) fn fixture(test: &str) -> Option<Fixture> {
    let garage = garage_or_skip(test)?;
    let home = tempfile::tempdir().unwrap();
    let storage = Storage {
        layout: Layout::new(home.path()),
        listeners: Listeners {
            s3: loopback(free_port().unwrap()),
            admin: loopback(free_port().unwrap()),
            rpc: loopback(free_port().unwrap()),
        },
        clusters: vec!["mgmt".into(), "app1".into()],
        // Generous: a loaded machine; the wait polls and ends when ready.
        ready_within: Duration::from_secs(180),
        garage: Some(garage),
        docker: None,
    };
    Some(Fixture {
        _home: home,
        storage,
    })
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub(crate) fn random_file(path: &Path, bytes: usize) {
    let mut data = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut data))
        .unwrap();
    std::fs::write(path, data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_creates_the_layout_buckets_keys_and_grants_once_and_keeps_secrets_private() {
    let Some(f) = fixture("storage up against a real Garage") else {
        return;
    };
    let changed = f.storage.up().await.expect("first up");
    for expected in [
        "started the object store",
        "applied the single-node layout",
        "created bucket etcd",
        "created bucket vault",
        "created bucket velero-mgmt",
        "created bucket velero-app1",
        "imported key velero-app1",
        "let velero-app1 read and write velero-app1",
    ] {
        assert!(
            changed.iter().any(|c| c.starts_with(expected)),
            "{expected:?} not in {changed:?}"
        );
    }
    let target = f.storage.backup_target("app1").expect("app1's target");
    assert_eq!(target.bucket, "velero-app1");
    assert_eq!(target.s3_url, f.storage.s3_url());
    let mgmt = f.storage.backup_target("mgmt").unwrap();
    assert_ne!(target.access_key_id, mgmt.access_key_id);
    assert_ne!(
        target.repository_password.expose(),
        mgmt.repository_password.expose()
    );

    let again = f.storage.up().await.expect("second up");
    assert!(again.is_empty(), "a second up changed {again:?}");
    // Kopia keeps the password a repository was made with: never changed.
    let after = f.storage.backup_target("app1").unwrap();
    assert_eq!(
        after.repository_password.expose(),
        target.repository_password.expose()
    );
    assert_eq!(after.access_key_id, target.access_key_id);

    // The daemon builds its client from the home alone.
    let home = f.storage.layout.root().parent().unwrap();
    let from_home = host_agent::storage::service::host_client_of(home)
        .unwrap()
        .expect("a client once the store is up");
    assert!(from_home.list(ETCD_BUCKET, "").await.unwrap().is_empty());
    let empty = tempfile::tempdir().unwrap();
    assert!(
        host_agent::storage::service::host_client_of(empty.path())
            .unwrap()
            .is_none()
    );

    let status = f.storage.status().await;
    assert_eq!(status.state, "running");
    assert_eq!(status.health, "healthy");

    let layout = &f.storage.layout;
    assert_eq!(mode(layout.root()), 0o700);
    for secret in [
        layout.keys(),
        layout.admin_token(),
        layout.rpc_secret(),
        layout.config(),
    ] {
        assert_eq!(mode(&secret), 0o600, "{}", secret.display());
    }
    let config = std::fs::read_to_string(layout.config()).unwrap();
    let token = std::fs::read_to_string(layout.admin_token()).unwrap();
    assert!(
        !config.contains(token.trim()),
        "the admin token is in garage.toml"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_snapshot_is_uploaded_listed_downloaded_and_matches_its_hash() {
    let Some(f) = fixture("etcd snapshot round trip through a real Garage") else {
        return;
    };
    f.storage.up().await.expect("up");
    let host = f.storage.host_client().unwrap();

    // A stored snapshot as the host keeps it: `.db` plus its metadata.
    let home = f.storage.layout.root().parent().unwrap().to_owned();
    let store = SnapshotStore::new(&home);
    let dir = store.cluster_dir("app1").unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let file = "20261203T180000Z-rev42.db";
    random_file(&dir.join(file), 3 << 20);
    let (size, sha256) = offsite::digest_file(&dir.join(file)).await.unwrap();
    let info = SnapshotInfo {
        cluster: "app1".into(),
        file: file.into(),
        node: "app1-cp-1".into(),
        revision: 42,
        revision_exact: true,
        etcd_version: "3.6.5".into(),
        taken_at: "20261203T180000Z".into(),
        taken_at_unix: 1_796_320_800,
        sha256: sha256.clone(),
        size,
        origin: "scheduled".into(),
    };
    std::fs::write(
        dir.join(file).with_extension("json"),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();

    let sent = offsite::upload_etcd(&host, &store, "app1")
        .await
        .expect("upload");
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|u| u.sent));
    assert_eq!(sent[0].sha256, sha256);

    let listed = host.list(ETCD_BUCKET, "app1/").await.unwrap();
    let keys: Vec<_> = listed.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "app1/20261203T180000Z-rev42.db",
            "app1/20261203T180000Z-rev42.json"
        ]
    );
    assert_eq!(listed[0].size, size);

    let back = tempfile::tempdir().unwrap();
    let dest = back.path().join("restored.db");
    let got = offsite::download_verified(&host, ETCD_BUCKET, &listed[0].key, &dest, 1 << 30)
        .await
        .expect("download");
    assert_eq!((got.size, got.sha256.as_str()), (size, sha256.as_str()));
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(dir.join(file)).unwrap()
    );

    // `storage status` shows the newest copy of each kind against the RPO.
    let copies = f.storage.status().await.copies;
    let of = |cluster: &str, kind: &str| {
        copies
            .iter()
            .find(|c| c.cluster == cluster && c.kind == kind)
            .unwrap_or_else(|| panic!("no {cluster} {kind} in {copies:?}"))
            .clone()
    };
    let app1 = of("app1", "etcd");
    assert_eq!(
        app1.newest.as_deref(),
        Some("app1/20261203T180000Z-rev42.db")
    );
    assert_eq!(app1.state, "ok");
    assert_eq!(of("mgmt", "etcd").state, "none");
    assert_eq!(of("app1", "velero").state, "none");
    assert_eq!(of("mgmt", "vault").state, "none");

    // Running it again sends nothing: the copies are there and match.
    let again = offsite::upload_etcd(&host, &store, "app1").await.unwrap();
    assert!(again.iter().all(|u| !u.sent), "{again:?}");

    // A download bounded below the object's size is refused, leaving nothing.
    let small = back.path().join("small.db");
    let err = host
        .get_to_file(ETCD_BUCKET, &listed[0].key, &small, 1 << 20)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    assert!(!small.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_differs_from_its_signed_digest_is_refused_and_not_stored() {
    let Some(f) = fixture("Garage refuses a body that differs from its digest") else {
        return;
    };
    f.storage.up().await.expect("up");
    let host = f.storage.host_client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.db");
    random_file(&path, 1 << 20);
    let wrong = "0".repeat(64);
    let err = host
        .put_file(ETCD_BUCKET, "app1/damaged.db", &path, &wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Api { .. }), "{err}");
    assert_eq!(
        host.head(ETCD_BUCKET, "app1/damaged.db").await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clusters_key_is_refused_on_another_clusters_bucket_and_the_hosts() {
    let Some(f) = fixture("another cluster's key is refused by a real Garage") else {
        return;
    };
    f.storage.up().await.expect("up");
    let app1 = f.storage.client(&velero_key("app1")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.tar");
    random_file(&path, 64 << 10);

    // Its own bucket: allowed.
    offsite::upload_file(&app1, &velero_bucket("app1"), "backups/a.tar", &path)
        .await
        .expect("app1 writes its own bucket");

    // mgmt's Velero bucket and the host's etcd bucket: refused both ways.
    for bucket in [velero_bucket("mgmt"), ETCD_BUCKET.to_owned()] {
        let write = offsite::upload_file(&app1, &bucket, "planted.tar", &path).await;
        assert!(
            matches!(write, Err(StorageError::Api { status: 403, .. })),
            "app1's key wrote {bucket}: {write:?}"
        );
        let read = app1.list(&bucket, "").await;
        assert!(
            matches!(read, Err(StorageError::Api { status: 403, .. })),
            "app1's key listed {bucket}: {read:?}"
        );
    }
    // And nothing was planted.
    let host = f.storage.client(HOST_KEY).unwrap();
    assert_eq!(host.head(ETCD_BUCKET, "planted.tar").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_keeps_the_data_and_keys_and_purge_removes_them() {
    let Some(f) = fixture("storage down keeps the data") else {
        return;
    };
    f.storage.up().await.expect("up");
    let host = f.storage.host_client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kept.db");
    random_file(&path, 256 << 10);
    offsite::upload_file(&host, ETCD_BUCKET, "mgmt/kept.db", &path)
        .await
        .unwrap();
    let keys_before = std::fs::read(f.storage.layout.keys()).unwrap();

    let lines = f.storage.down(false).await.unwrap();
    assert_eq!(lines[0], "stopped the object store");
    assert_eq!(f.storage.status().await.state, "stopped");

    let changed = f.storage.up().await.expect("up after down");
    assert!(
        changed.iter().all(|c| c.starts_with("started")),
        "up after down recreated {changed:?}"
    );
    assert_eq!(std::fs::read(f.storage.layout.keys()).unwrap(), keys_before);
    let head = host.head(ETCD_BUCKET, "mgmt/kept.db").await.unwrap();
    assert_eq!(head.map(|h| h.size), Some(256 << 10));

    f.storage.down(true).await.unwrap();
    assert!(!f.storage.layout.root().exists());
    assert_eq!(f.storage.status().await.state, "not set up");
}

/// A scheduled snapshot a control plane uploads to the daemon is also
/// copied to the home's object store (in the background: the node's
/// upload is answered first), checked by its digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_uploaded_to_the_daemon_is_copied_to_the_object_store() {
    use crate::etcd_store_support::{chunks, meta, synthetic, trailer_of};
    use proto::v1::snapshot_sink_client::SnapshotSinkClient;
    use test_support::host_daemon::{Home, Mint, NODE_A, host_channel};

    let Some(garage) = garage_or_skip("the daemon copies snapshots to a real Garage") else {
        return;
    };
    let home = Home::new().unwrap();
    let f = Fixture {
        _home: tempfile::tempdir().unwrap(),
        storage: Storage {
            layout: Layout::new(home.path()),
            listeners: Listeners {
                s3: loopback(free_port().unwrap()),
                admin: loopback(free_port().unwrap()),
                rpc: loopback(free_port().unwrap()),
            },
            clusters: vec!["app1".into()],
            ready_within: Duration::from_secs(180),
            garage: Some(garage),
            docker: None,
        },
    };
    f.storage.up().await.expect("up");
    let daemon = home.start().await.unwrap();
    let creds = Mint::node(NODE_A)
        .sign(&home.agent_ca_issuer().unwrap())
        .unwrap();
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&creds))
        .await
        .unwrap();
    let file = synthetic(7);
    let stream = tokio_stream::iter(
        chunks(meta(9, 1_800_000_000), &file, trailer_of(&file))
            .into_iter()
            .filter_map(Result::ok),
    );
    let stored = SnapshotSinkClient::new(ch)
        .upload_snapshot(stream)
        .await
        .expect("stored")
        .into_inner()
        .stored_as;

    let host = f.storage.host_client().unwrap();
    let key = offsite::etcd_key("app1", &stored);
    // Bounded polling with a generous deadline: the copy runs after the
    // answer, on a machine that may be loaded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let head = loop {
        if let Some(head) = host.head(ETCD_BUCKET, &key).await.unwrap() {
            break head;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} never reached the bucket"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    daemon.stop().await.unwrap();
    use sha2::Digest;
    assert_eq!(head.size, file.len() as u64);
    assert_eq!(
        head.sha256.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&file)).as_str())
    );
}
