//! Helpers of the snapshot-store suite (`etcd_store.rs`): real and
//! synthetic snapshots, their streams, and a store on a test clock.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use host_agent::snapshots::receive::receive;
use host_agent::snapshots::store::SnapshotStore;
use host_agent::snapshots::{SnapshotError, Source};
use proto::v1::{SnapshotChunk, SnapshotMeta, SnapshotTrailer, snapshot_chunk::Kind};
use sha2::{Digest, Sha256};
use test_support::etcd::{Etcd, EtcdSpec, TestResult, free_port, mint_etcd_pki};
use test_support::host_daemon::TestClock;

pub fn app1() -> Source {
    Source {
        cluster: "app1".into(),
        node: "app1-cp".into(),
    }
}

/// A real snapshot saved by `etcdctl snapshot save`, and its revision.
pub fn etcd_snapshot(dir: &Path) -> TestResult<(Vec<u8>, i64)> {
    let pki = mint_etcd_pki(dir)?;
    let spec = EtcdSpec::loopback("m1", free_port()?, free_port()?, dir.join("data"));
    let etcd = Etcd::start(&pki, &spec)?;
    etcd.put_keys("/registry/k", 30)?;
    let revision = etcd.revision()?;
    let file = dir.join("etcdctl.db");
    etcd.ctl(&["snapshot", "save", &file.display().to_string()])?;
    Ok((std::fs::read(&file)?, revision))
}

pub fn meta(revision: i64, at: i64) -> SnapshotMeta {
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

pub type Chunks = Vec<Result<SnapshotChunk, tonic::Status>>;

pub fn chunks(
    meta: SnapshotMeta,
    bytes: &[u8],
    trailer: SnapshotTrailer,
) -> Vec<Result<SnapshotChunk, tonic::Status>> {
    let mut out = vec![Ok(SnapshotChunk {
        kind: Some(Kind::Meta(meta)),
    })];
    out.extend(bytes.chunks(64 * 1024).map(|c| {
        Ok(SnapshotChunk {
            kind: Some(Kind::Data(c.to_vec().into())),
        })
    }));
    out.push(Ok(SnapshotChunk {
        kind: Some(Kind::Trailer(trailer)),
    }));
    out
}

pub fn trailer_of(bytes: &[u8]) -> SnapshotTrailer {
    SnapshotTrailer {
        sha256: bytes[bytes.len() - 32..].to_vec(),
        size: bytes.len() as u64,
    }
}

pub async fn store_stream(
    store: &SnapshotStore,
    c: Vec<Result<SnapshotChunk, tonic::Status>>,
) -> Result<host_agent::snapshots::store::Stored, SnapshotError> {
    receive(store, tokio_stream::iter(c), &app1()).await
}

/// A store whose receipt clock starts at `unix` seconds.
pub fn store_at(home: &Path, unix: u64) -> (SnapshotStore, TestClock) {
    let clock = TestClock::at(UNIX_EPOCH + Duration::from_secs(unix));
    (SnapshotStore::with_clock(home, clock.clock()), clock)
}

/// A synthetic snapshot file (`db ‖ sha256(db)`, 512·k + 32 bytes) whose
/// contents depend on `seed`: the store checks the rule, not bolt.
pub fn synthetic(seed: u8) -> Vec<u8> {
    let mut file: Vec<u8> = (0..4096u32).map(|i| (i as u8) ^ seed).collect();
    let hash = Sha256::digest(&file);
    file.extend_from_slice(&hash);
    file
}

/// 2099-01-01T00:00:00Z.
pub const YEAR_2099: i64 = 4_070_908_800;

pub fn files(dir: &Path) -> Vec<String> {
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

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
