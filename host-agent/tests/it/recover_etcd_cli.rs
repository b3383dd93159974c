//! `hostctl recover etcd` through the real binary, with STAND-INs for the
//! cluster: a topology on a loopback network (127.77.0.0/24, so app1's
//! control plane is 127.77.0.20 on this host without touching its
//! interfaces), a stand-in control-plane agent there (mutual TLS from the
//! home's agent CA, the real `Etcd` service API) and test-support's
//! stand-in API server at the topology's endpoint.
//!
//! A snapshot of another cluster is refused at step 2 with the file, the
//! field and the fix; with the agent unreachable the run fails at step 3
//! with the choice on record, and the rerun says it resumes, skips steps
//! 1–2 and keeps that snapshot although a newer one arrived; naming another
//! snapshot is refused unless `--restart`. Then the agent is back: the
//! rerun restores the recorded snapshot and waits for `/readyz`, which
//! fails while etcd is "down"; the last rerun restores nothing again,
//! finds the API ready, prints the total against the RTO and removes the
//! record.

use host_agent::agent_plane::NODE_SERVICE_PORT;
use host_agent::cluster_config::cluster::API_SERVER_PORT;
use host_agent::snapshots::{SnapshotInfo, SnapshotStore};
use proto::v1::etcd_server::{Etcd as EtcdService, EtcdServer};
use proto::v1::progress_event::Outcome;
use proto::v1::{
    EtcdSnapshotRequest, OperationDone, ProgressEvent, RestoreChunk, SnapshotChunk,
    restore_chunk::Kind,
};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use test_support::kube_api;
use tokio_stream::Stream;

/// app1's control plane in the loopback topology (`address: 20`).
const APP1_CP: &str = "127.77.0.20";

/// `hostctl` in `dir` (where the topology is) with `home`.
fn hostctl(dir: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hostctl"))
        .args(args)
        .current_dir(dir)
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

/// A file in etcd's snapshot format (one 512-byte page named after `file`,
/// then its SHA-256), as the host stores them.
fn snapshot_bytes(file: &str) -> Vec<u8> {
    let mut page = file.as_bytes().to_vec();
    page.resize(512, 0);
    let digest = Sha256::digest(&page);
    page.extend_from_slice(&digest);
    page
}

/// A stored snapshot of app1's directory whose metadata names `cluster`.
fn plant(home: &Path, cluster: &str, file: &str) {
    let dir = SnapshotStore::new(home).cluster_dir("app1").unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let body = snapshot_bytes(file);
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
        sha256: hex::encode(Sha256::digest(&body[..body.len() - 32])),
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
        let (mut meta, mut hasher) = (None, proto::snapshot::TrailerHasher::new());
        let mut verified = None;
        while let Some(chunk) = stream.message().await? {
            match chunk.kind {
                Some(Kind::Start(start)) => meta = start.meta,
                Some(Kind::Data(data)) => hasher.update(&data),
                Some(Kind::Trailer(t)) => {
                    // The rule the real agent holds a restore to.
                    let v = hasher
                        .clone()
                        .finish()
                        .map_err(|e| tonic::Status::data_loss(e.to_string()))?;
                    v.matches(&t.sha256, t.size)
                        .map_err(|e| tonic::Status::data_loss(e.to_string()))?;
                    verified = Some(v);
                    break;
                }
                None => {}
            }
        }
        let meta = meta.ok_or_else(|| tonic::Status::invalid_argument("no start"))?;
        let verified = verified.ok_or_else(|| tonic::Status::data_loss("no trailer"))?;
        self.restored
            .lock()
            .unwrap()
            .push((meta.cluster, meta.node, verified.sha256_hex()));
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

/// Serves the stand-in agent at app1's control plane's agent port, with a
/// serving certificate for its address from `home`'s agent CA, requiring a
/// client certificate of that CA (as node agents do), and the stand-in API
/// server at the topology's endpoint; both stop when the runtime is
/// dropped.
fn serve_stand_ins(
    home: &Path,
    node: StandInNode,
    api: Arc<Mutex<kube_api::State>>,
) -> tokio::runtime::Runtime {
    let ca_pem = std::fs::read_to_string(home.join("pki/agent/ca.crt")).unwrap();
    let ca_key = std::fs::read_to_string(home.join("pki/agent/ca.key")).unwrap();
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&ca_pem, rcgen::KeyPair::from_pem(&ca_key).unwrap())
            .unwrap();
    let mut params = rcgen::CertificateParams::new(vec![APP1_CP.to_owned()]).unwrap();
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
    let ip: std::net::IpAddr = APP1_CP.parse().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(SocketAddr::new(
            ip,
            NODE_SERVICE_PORT,
        )))
        .unwrap();
    rt.spawn(
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(EtcdServer::new(node))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let pki = certs::Pki::open(home).unwrap();
    let addr = SocketAddr::new(ip, API_SERVER_PORT);
    rt.block_on(kube_api::serve(&pki, "app1", addr, &[APP1_CP], api));
    rt
}

#[test]
fn recover_etcd_refuses_another_clusters_snapshot_resumes_with_the_same_one_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let run = |args: &[&str]| hostctl(dir.path(), &home, args);
    let out = run(&["init"]);
    assert!(out.status.success(), "{}", text(&out));
    let file = dir.path().join("hostctl.yaml");
    let default = std::fs::read_to_string(&file).unwrap();
    let looped = default
        .replace("cidr: 192.168.64.0/24", "cidr: 127.77.0.0/24")
        .replace("addressing: provider", "addressing: fixed");
    assert_eq!(looped.matches("127.77.0.0/24").count(), 1, "{default}");
    assert!(looped.contains("addressing: fixed"), "{default}");
    std::fs::write(&file, looped).unwrap();
    // Nothing listens at the control plane's agent port yet.
    let recover = |extra: &[&str]| {
        let mut args = vec!["recover", "etcd", "app1", "--yes"];
        args.extend_from_slice(extra);
        run(&args)
    };

    let out = run(&["recover", "etcd", "app1"]);
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

    // The control-plane agent is back; etcd is not yet healthy behind the
    // API server: the rerun restores the recorded snapshot, then waits for
    // `/readyz` in vain.
    let node = StandInNode::default();
    let api = Arc::new(Mutex::new(kube_api::State {
        readyz_down: true,
        ..Default::default()
    }));
    let _servers = serve_stand_ins(&home, node.clone(), api.clone());
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
    let body = snapshot_bytes("20261203T190000Z-rev8.db");
    assert_eq!(
        node.restored.lock().unwrap().as_slice(),
        [(
            "app1".to_owned(),
            "app1-cp".to_owned(),
            hex::encode(Sha256::digest(&body[..512]))
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

    // The API answers: the last rerun does not restore again, completes,
    // judges the total against the RTO and removes the record.
    api.lock().unwrap().readyz_down = false;
    let out = recover(&[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for part in [
        "[3/4] restore etcd through the control-plane agent … done in an earlier run",
        "[4/4] wait for the API server … done in",
        "recovered in ",
        "(RTO 30m: ",
    ] {
        assert!(t.contains(part), "{part:?} not in:\n{t}");
    }
    assert_eq!(node.restored.lock().unwrap().len(), 1);
    assert!(!record.exists(), "a finished recovery left its record");
    eprintln!("{t}");
    let readyz = api
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.path == "/readyz")
        .count();
    assert!(readyz >= 2, "the API server was asked {readyz} times");
}
