//! `hostctl recover etcd` through the real binary, up to what needs no
//! cluster: a snapshot of another cluster is refused at step 2 with the
//! file, the field and the fix; a run whose control-plane agent does not
//! answer fails at step 3 with the choice on record, and the rerun says it
//! resumes, skips steps 1–2 and keeps that snapshot even though a newer
//! one arrived; naming another snapshot is refused unless `--restart`.
//! Then a STAND-IN control-plane agent comes up at that address (mutual
//! TLS from the home's agent CA, the real `Etcd` service API) and the next
//! rerun gets through the restore to step 4, which fails: no API server
//! answers at the topology's endpoint (a run that completes needs the test
//! API server there: see docs/backup.md).

use host_agent::snapshots::{SnapshotInfo, SnapshotStore};
use proto::v1::etcd_server::{Etcd as EtcdService, EtcdServer};
use proto::v1::progress_event::Outcome;
use proto::v1::{
    EtcdSnapshotRequest, OperationDone, ProgressEvent, RestoreChunk, SnapshotChunk,
    restore_chunk::Kind,
};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::pin::Pin;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use test_support::etcd::free_port;
use tokio_stream::Stream;

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
    let body = format!("stand-in snapshot {file}");
    std::fs::write(dir.join(file), &body).unwrap();
    let info = SnapshotInfo {
        cluster: cluster.into(),
        file: file.into(),
        node: format!("{cluster}-cp"),
        revision: 7,
        revision_exact: true,
        etcd_version: "3.6.5".into(),
        taken_at: file[..16].into(),
        taken_at_unix: 1_796_320_800,
        sha256: hex::encode(Sha256::digest(body.as_bytes())),
        size: body.len() as u64,
        origin: "on-demand".into(),
    };
    std::fs::write(
        dir.join(file).with_extension("json"),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<SnapshotChunk, tonic::Status>> + Send>>;
type EventStream = Pin<Box<dyn Stream<Item = Result<ProgressEvent, tonic::Status>> + Send>>;

/// A STAND-IN for a control-plane agent's `Etcd` service: it takes a
/// restore stream, holds the bytes to the trailer's digest, records the
/// start's metadata and the digest, and answers done (the real choreography
/// is node-agent's, tested there).
#[derive(Default, Clone)]
struct StandInNode {
    restored: Arc<Mutex<Vec<(String, String, String)>>>,
}

#[tonic::async_trait]
impl EtcdService for StandInNode {
    type SnapshotStream = ChunkStream;
    type RestoreStream = EventStream;

    async fn snapshot(
        &self,
        _: tonic::Request<EtcdSnapshotRequest>,
    ) -> Result<tonic::Response<ChunkStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }

    async fn restore(
        &self,
        request: tonic::Request<tonic::Streaming<RestoreChunk>>,
    ) -> Result<tonic::Response<EventStream>, tonic::Status> {
        let mut stream = request.into_inner();
        let (mut meta, mut hasher) = (None, Sha256::new());
        while let Some(chunk) = stream.message().await? {
            match chunk.kind {
                Some(Kind::Start(start)) => meta = start.meta,
                Some(Kind::Data(data)) => hasher.update(&data),
                Some(Kind::Trailer(t)) => {
                    let got = hasher.clone().finalize().to_vec();
                    if got != t.sha256 {
                        return Err(tonic::Status::data_loss("digest differs"));
                    }
                    break;
                }
                None => {}
            }
        }
        let meta = meta.ok_or_else(|| tonic::Status::invalid_argument("no start"))?;
        self.restored.lock().unwrap().push((
            meta.cluster,
            meta.node,
            hex::encode(hasher.finalize()),
        ));
        let done = ProgressEvent {
            phase: "done".into(),
            message: "restored (stand-in)".into(),
            outcome: Some(Outcome::Done(OperationDone {
                already_done: false,
            })),
            ..Default::default()
        };
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter([Ok(
            done,
        )]))))
    }
}

/// Serves the stand-in at `addr` with a serving certificate for 127.0.0.1
/// from `home`'s agent CA, requiring a client certificate of that CA (as
/// node agents do); returns its runtime (dropped: stopped).
fn serve_stand_in(home: &Path, addr: &str, node: StandInNode) -> tokio::runtime::Runtime {
    let ca_pem = std::fs::read_to_string(home.join("pki/agent/ca.crt")).unwrap();
    let ca_key = std::fs::read_to_string(home.join("pki/agent/ca.key")).unwrap();
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&ca_pem, rcgen::KeyPair::from_pem(&ca_key).unwrap())
            .unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            cert.pem(),
            key.serialize_pem(),
        ))
        .client_ca_root(tonic::transport::Certificate::from_pem(&ca_pem));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).unwrap();
    rt.spawn(
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(EtcdServer::new(node))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    rt
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

    // mgmt's snapshot in app1's directory: a refusal (exit 5).
    plant(&home, "mgmt", "20261203T180000Z-rev7.db");
    let out = recover(&[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
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

    // The control-plane agent is back at that address: the rerun restores
    // the recorded snapshot, then waits for an API server that is not there.
    let node = StandInNode::default();
    let _server = serve_stand_in(&home, &nowhere, node.clone());
    let out = recover(&["--api-within", "1"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    for part in [
        "[2/4] check it is the cluster's … done in an earlier run",
        "restored (stand-in)",
        "[3/4] restore etcd through the control-plane agent … done in",
        "[4/4] wait for the API server … failed",
        "did not answer /readyz within 1s",
    ] {
        assert!(t.contains(part), "{part:?} not in:\n{t}");
    }
    let body = b"stand-in snapshot 20261203T190000Z-rev8.db";
    assert_eq!(
        node.restored.lock().unwrap().as_slice(),
        [(
            "app1".to_owned(),
            "app1-cp".to_owned(),
            hex::encode(Sha256::digest(body))
        )]
    );
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let done: Vec<&str> = kept["done"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["step"].as_str())
        .collect();
    assert_eq!(done, ["choose", "check", "restore"], "{kept:#}");

    // The next rerun does not restore again.
    let out = recover(&["--api-within", "1"]);
    let t = text(&out);
    assert!(
        t.contains("[3/4] restore etcd through the control-plane agent … done in an earlier run"),
        "{t}"
    );
    assert_eq!(node.restored.lock().unwrap().len(), 1);
}
