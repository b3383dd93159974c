//! The autonomous schedule: snapshots are taken while the host is down,
//! kept locally (newest N), and arrive at the host once it is back.

use crate::etcd_support;
use test_support::node_harness as harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_support::{StandInKubelet, TestResult};
use harness::{TestPki, install_crypto};
use node_agent::etcd::EtcdTarget;
use node_agent::etcd::local::LocalSnapshots;
use node_agent::etcd::schedule::{self, Schedule};
use node_agent::etcd::snapshot::Taker;
use proto::snapshot::{TrailerHasher, Verified};
use proto::v1::snapshot_sink_server::{SnapshotSink, SnapshotSinkServer};
use proto::v1::{SnapshotChunk, SnapshotMeta, UploadSnapshotResponse, snapshot_chunk::Kind};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

/// A stand-in for the host's SnapshotSink: verifies and records uploads.
#[derive(Clone, Default)]
struct StandInSink {
    got: Arc<Mutex<Vec<(SnapshotMeta, Verified)>>>,
}

#[tonic::async_trait]
impl SnapshotSink for StandInSink {
    async fn upload_snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<UploadSnapshotResponse>, Status> {
        let mut stream = req.into_inner();
        let (mut meta, mut hasher) = (None, TrailerHasher::new());
        while let Some(c) = stream.message().await? {
            match c.kind {
                Some(Kind::Meta(m)) => meta = Some(m),
                Some(Kind::Data(d)) => hasher.update(&d),
                Some(Kind::Trailer(t)) => {
                    let v = hasher
                        .clone()
                        .finish()
                        .map_err(|e| Status::invalid_argument(e.to_string()))?;
                    v.matches(&t.sha256, t.size)
                        .map_err(|e| Status::invalid_argument(e.to_string()))?;
                    let m = meta
                        .take()
                        .ok_or_else(|| Status::invalid_argument("no meta"))?;
                    let name = format!("rev{}", m.revision);
                    self.got
                        .lock()
                        .map_err(|_| Status::internal("poisoned"))?
                        .push((m, v));
                    return Ok(Response::new(UploadSnapshotResponse {
                        stored_as: name,
                        already_stored: false,
                    }));
                }
                _ => return Err(Status::invalid_argument("unexpected chunk")),
            }
        }
        Err(Status::invalid_argument("no trailer"))
    }
}

async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> TestResult {
    let start = std::time::Instant::now();
    while !f() {
        if start.elapsed() > limit {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_taken_while_the_host_is_down_arrive_when_it_returns() -> TestResult {
    install_crypto();
    let pki = TestPki::new()?;
    let root = tempfile::tempdir()?;
    let kubelet = StandInKubelet::start(root.path(), false)?;
    kubelet.with_etcd(|e| e.put_keys("/k", 10))?;

    // The host's port is reserved but nothing listens: the host is down.
    let port = etcd_support::free_port()?;
    let endpoint = pki.link("app1-cp", &format!("127.0.0.1:{port}"))?;
    let local = LocalSnapshots::new(root.path().join("state/snapshots"), 2);
    let schedule = Schedule {
        target: EtcdTarget {
            endpoint: kubelet.endpoint(),
            root: root.path().to_owned(),
        },
        taker: Taker {
            cluster: "app1".into(),
            node: "app1-cp".into(),
        },
        local: local.clone(),
        interval: Duration::from_secs(1),
        metrics: Default::default(),
    };
    let task = tokio::spawn(schedule::run(schedule, endpoint));

    // Three intervals with the host down: snapshots pile up, keep 2.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let pending = local.pending().await?;
    assert_eq!(pending.len(), 2, "kept the newest 2 locally: {pending:?}");
    assert!(
        pending
            .iter()
            .all(|e| e.meta.cluster == "app1" && e.meta.size > 0)
    );

    // The host returns.
    let sink = StandInSink::default();
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let server = Server::builder()
        .tls_config(
            ServerTlsConfig::new()
                .identity(pki.host_identity())
                .client_ca_root(pki.ca()),
        )?
        .add_service(SnapshotSinkServer::new(sink.clone()))
        .serve_with_incoming(TcpListenerStream::new(listener));
    let server = tokio::spawn(server);
    let got = sink.got.clone();
    wait_for("uploads", Duration::from_secs(40), || {
        got.lock().map(|g| g.len() >= 2).unwrap_or(false)
    })
    .await?;
    let uploaded = got.lock().map_err(|_| "poisoned")?.clone();
    for (meta, verified) in &uploaded {
        assert_eq!(meta.origin, "scheduled");
        assert_eq!(meta.node, "app1-cp");
        assert!(verified.size > 0);
    }
    // The node records what the host acknowledged, and still keeps only 2.
    let start = std::time::Instant::now();
    loop {
        let list = local.list().await?;
        assert!(list.len() <= 2, "{list:?}");
        if list.iter().any(|e| e.meta.shipped) {
            break;
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err("no local snapshot marked shipped".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.abort();
    server.abort();
    Ok(())
}

/// Partial snapshot files left by a crash or kill (one can be as large as
/// the database) are removed before the next snapshot — and when the
/// schedule starts, without waiting for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_left_by_an_interrupted_snapshot_are_removed() -> TestResult {
    install_crypto();
    let root = tempfile::tempdir()?;
    let kubelet = StandInKubelet::start(root.path(), false)?;
    let dir = root.path().join("state/snapshots");
    std::fs::create_dir_all(&dir)?;
    let leftovers = [
        dir.join(".incoming-424242.db.part"),
        dir.join(".incoming-424242.db"),
        dir.join("20250101T000000Z-rev3.json.tmp"),
    ];
    for f in &leftovers {
        std::fs::write(f, vec![7u8; 256 * 1024])?;
    }
    let local = LocalSnapshots::new(dir.clone(), 2);
    let target = EtcdTarget {
        endpoint: kubelet.endpoint(),
        root: root.path().to_owned(),
    };
    let taker = Taker {
        cluster: "app1".into(),
        node: "app1-cp".into(),
    };
    let entry = local.save(&target, &taker).await?;
    for f in &leftovers {
        assert!(!f.exists(), "{} survived the next snapshot", f.display());
    }
    let listed = local.list().await?;
    assert_eq!(listed, std::slice::from_ref(&entry));

    // Start-up: the schedule removes leftovers before anything else. The
    // host is down and the interval long, so nothing else happens.
    std::fs::write(&leftovers[0], b"partial")?;
    let port = etcd_support::free_port()?;
    let pki = TestPki::new()?;
    let link = pki.link("app1-cp", &format!("127.0.0.1:{port}"))?;
    let schedule = Schedule {
        target,
        taker,
        local: local.clone(),
        interval: Duration::from_secs(3600),
        metrics: Default::default(),
    };
    let task = tokio::spawn(schedule::run(schedule, link));
    let gone = leftovers[0].clone();
    wait_for("the leftover's removal", Duration::from_secs(20), || {
        !gone.exists()
    })
    .await?;
    task.abort();
    assert!(
        entry.db.exists(),
        "a complete snapshot was removed as a leftover"
    );
    Ok(())
}
