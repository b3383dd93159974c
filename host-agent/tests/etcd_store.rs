//! The host's snapshot store against real etcd snapshots (Debian's etcd
//! 3.4, TLS + client certificates): what it stores `etcdctl` accepts;
//! damaged or truncated streams leave nothing under a final name;
//! retention and de-duplication; who may upload.

#[path = "../../node-agent/tests/etcd_support/process.rs"]
mod etcd_process;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use etcd_process::{Etcd, EtcdSpec, TestResult, free_port, mint_etcd_pki, snapshot_status};
use host_agent::snapshots::SnapshotError;
use host_agent::snapshots::receive::receive;
use host_agent::snapshots::sink::refusal;
use host_agent::snapshots::store::SnapshotStore;
use proto::v1::{SnapshotChunk, SnapshotMeta, SnapshotTrailer, snapshot_chunk::Kind};
use sha2::{Digest, Sha256};

/// A real snapshot saved by `etcdctl snapshot save`, and its revision.
fn etcd_snapshot(dir: &Path) -> TestResult<(Vec<u8>, i64)> {
    let pki = mint_etcd_pki(dir)?;
    let spec = EtcdSpec::loopback("m1", free_port()?, free_port()?, dir.join("data"));
    let etcd = Etcd::start(&pki, &spec)?;
    etcd.put_keys("/registry/k", 30)?;
    let revision = etcd.revision()?;
    let file = dir.join("etcdctl.db");
    etcd.ctl(&["snapshot", "save", &file.display().to_string()])?;
    Ok((std::fs::read(&file)?, revision))
}

fn meta(revision: i64, at: i64) -> SnapshotMeta {
    SnapshotMeta {
        cluster: "app1".into(),
        node: "app1-cp".into(),
        revision,
        revision_exact: true,
        etcd_version: "3.4.23".into(),
        taken_at: Some(proto::Timestamp {
            seconds: at,
            nanos: 0,
        }),
        origin: "on-demand".into(),
    }
}

type Chunks = Vec<Result<SnapshotChunk, tonic::Status>>;

fn chunks(
    meta: SnapshotMeta,
    bytes: &[u8],
    trailer: SnapshotTrailer,
) -> Vec<Result<SnapshotChunk, tonic::Status>> {
    let mut out = vec![Ok(SnapshotChunk {
        kind: Some(Kind::Meta(meta)),
    })];
    out.extend(bytes.chunks(64 * 1024).map(|c| {
        Ok(SnapshotChunk {
            kind: Some(Kind::Data(c.to_vec())),
        })
    }));
    out.push(Ok(SnapshotChunk {
        kind: Some(Kind::Trailer(trailer)),
    }));
    out
}

fn trailer_of(bytes: &[u8]) -> SnapshotTrailer {
    SnapshotTrailer {
        sha256: bytes[bytes.len() - 32..].to_vec(),
        size: bytes.len() as u64,
    }
}

async fn store_stream(
    store: &SnapshotStore,
    c: Vec<Result<SnapshotChunk, tonic::Status>>,
) -> Result<host_agent::snapshots::store::Stored, SnapshotError> {
    receive(store, tokio_stream::iter(c), &|_| Ok(())).await
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_real_snapshot_is_stored_atomically_with_metadata() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (bytes, revision) = etcd_snapshot(tmp.path())?;
    let home = tmp.path().join("home");
    let store = SnapshotStore::new(&home);
    let stored = store_stream(
        &store,
        chunks(meta(revision, 1_700_000_000), &bytes, trailer_of(&bytes)),
    )
    .await?;

    assert_eq!(
        stored.info.file,
        format!("20231114T221320Z-rev{revision}.db")
    );
    assert_eq!(
        stored.path,
        home.join("snapshots/app1").join(&stored.info.file)
    );
    assert_eq!(stored.info.size, bytes.len() as u64);
    assert_eq!(
        stored.info.sha256,
        hex(&Sha256::digest(&bytes[..bytes.len() - 32]))
    );
    let status = snapshot_status(&stored.path)?;
    assert_eq!(status["revision"].as_i64(), Some(revision), "{status}");
    assert_eq!(
        files(&home.join("snapshots/app1")),
        [
            stored.info.file.clone(),
            stored.info.file.replace(".db", ".json")
        ]
    );
    let listed = store.list("app1")?;
    assert_eq!(listed, std::slice::from_ref(&stored.info));

    let again = store_stream(
        &store,
        chunks(meta(revision, 1_700_000_500), &bytes, trailer_of(&bytes)),
    )
    .await?;
    assert!(again.already_stored);
    assert_eq!(store.list("app1")?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn damaged_streams_leave_nothing_under_a_final_name() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (bytes, revision) = etcd_snapshot(tmp.path())?;
    let home = tmp.path().join("home");
    let store = SnapshotStore::new(&home);
    let mut corrupted = bytes.clone();
    corrupted[bytes.len() / 3] ^= 0x01;
    let truncated = &bytes[..bytes.len() - 100];
    let cases: [(&str, Chunks, &str); 4] = [
        (
            "corrupted",
            chunks(meta(revision, 1), &corrupted, trailer_of(&bytes)),
            "sha256 mismatch",
        ),
        (
            "truncated",
            chunks(meta(revision, 2), truncated, trailer_of(&bytes)),
            "checksum not found",
        ),
        (
            "no trailer",
            {
                let mut c = chunks(meta(revision, 3), &bytes, trailer_of(&bytes));
                c.pop();
                c
            },
            "without a trailer",
        ),
        (
            "broken",
            {
                let mut c = chunks(meta(revision, 4), &bytes, trailer_of(&bytes));
                c.truncate(2);
                c.push(Err(tonic::Status::unavailable("link down")));
                c
            },
            "link down",
        ),
    ];
    for (name, c, says) in cases {
        let err = store_stream(&store, c).await.err().ok_or(name)?;
        assert!(err.to_string().contains(says), "{name}: {err}");
        assert_eq!(
            files(&home.join("snapshots/app1")),
            Vec::<String>::new(),
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn retention_keeps_the_newest() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let (bytes, revision) = etcd_snapshot(tmp.path())?;
    let store = SnapshotStore::new(&tmp.path().join("home"));
    // Distinct contents: same database with a different fake trailer would
    // fail verification, so vary the metadata only and make the store see
    // distinct hashes by re-hashing a padded copy.
    for i in 0..4i64 {
        let mut db = bytes[..bytes.len() - 32].to_vec();
        db.extend(std::iter::repeat_n(i as u8, 512));
        let mut file = db.clone();
        file.extend_from_slice(&Sha256::digest(&db));
        store_stream(
            &store,
            chunks(
                meta(revision + i, 1_700_000_000 + i * 3600),
                &file,
                trailer_of(&file),
            ),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let removed = store.prune("app1", 2)?;
    assert_eq!(removed.len(), 2);
    let kept: Vec<i64> = store.list("app1")?.iter().map(|i| i.revision).collect();
    assert_eq!(kept, [revision + 2, revision + 3]);
    assert_eq!(store.clusters()?, ["app1"]);
    Ok(())
}

#[test]
fn only_the_clusters_control_plane_may_upload() {
    let cps: BTreeMap<String, String> = [("app1".to_owned(), "app1-cp".to_owned())].into();
    assert_eq!(refusal(&cps, "app1-cp", "app1", "app1-cp"), None);
    assert!(refusal(&cps, "app1-worker-0", "app1", "app1-worker-0").is_some());
    assert!(refusal(&cps, "app2-cp", "app1", "app2-cp").is_some());
    assert!(refusal(&cps, "app1-cp", "app1", "someone-else").is_some());
    assert!(refusal(&cps, "app1-cp", "nope", "app1-cp").is_some());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
