//! A real node agent (mTLS, harness host) whose kubeadm is the
//! `tests/fixtures/kubeadm-standin` STAND-IN, plus stand-ins for the
//! health endpoints kubeadm's "already done" answers probe.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use node_agent::agent;
use node_agent::config::CommandRunnerKind;
use node_agent::report::checks::Endpoints;
use proto::v1::kubeadm_client::KubeadmClient;
use proto::v1::progress_event::Outcome;
use proto::v1::{Error as ApiError, ProgressEvent};
use test_support::node_harness::{Harness, RunningAgent, TestResult};
use tonic::transport::{Channel, Identity};

/// A running agent with the kubeadm stand-in (its PKI, root and address
/// are the [`RunningAgent`]'s).
pub struct Node(RunningAgent);

impl Deref for Node {
    type Target = RunningAgent;

    fn deref(&self) -> &RunningAgent {
        &self.0
    }
}

/// An address nothing listens on (bound, then released).
pub fn closed_port() -> TestResult<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Endpoints where nothing answers: an unhealthy node.
pub fn dead_endpoints() -> TestResult<Endpoints> {
    Ok(Endpoints {
        kubelet: closed_port()?,
        apiserver: closed_port()?,
        etcd: closed_port()?,
    })
}

/// Starts an agent (control plane or worker) probing `endpoints`.
pub async fn start(control_plane: bool, endpoints: Endpoints) -> TestResult<Node> {
    let harness = Harness::start().await?;
    let root = tempfile::tempdir()?;
    let mut config = harness.enrolling_config("n1", root.path())?;
    config.control_plane = control_plane;
    // kubeadm is the stand-in; nothing else goes through the runner here.
    config.command_runner = CommandRunnerKind::Real;
    config.kubeadm.binary = standin_wrapper(root.path())?;
    config.kubeadm.join_attempts = 3;
    config.kubeadm.join_retry_delay_millis = 10;
    let started = agent::start(config).await?.with_endpoints(endpoints);
    Ok(Node(RunningAgent::spawn(harness, root, started)?))
}

/// A per-node wrapper that runs the stand-in with this node's root (tests
/// run in parallel, so the root cannot come from the test's environment).
fn standin_wrapper(root: &Path) -> TestResult<PathBuf> {
    let standin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubeadm-standin");
    let wrapper = root.join("kubeadm");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nKUBEADM_STANDIN_ROOT='{}' exec '{}' \"$@\"\n",
            root.display(),
            standin.display()
        ),
    )?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
    Ok(wrapper)
}

impl Node {
    /// A Kubeadm client presenting `identity` (None: no client certificate).
    pub async fn client(&self, identity: Option<Identity>) -> TestResult<KubeadmClient<Channel>> {
        Ok(KubeadmClient::new(
            self.channel(identity, Duration::from_secs(30)).await?,
        ))
    }

    /// A client with the host's certificate.
    pub async fn host(&self) -> TestResult<KubeadmClient<Channel>> {
        self.client(Some(self.pki.host_identity())).await
    }

    /// `<root>/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel.trim_start_matches('/'))
    }

    /// Scripts the stand-in (see its header for the format).
    pub fn control(&self, json: &str) -> TestResult {
        let dir = self.path("kubeadm-standin");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("control.json"), json)?;
        for c in ["init", "join", "reset"] {
            let _ = std::fs::remove_file(dir.join(format!("{c}.failures")));
        }
        Ok(())
    }

    /// The argv of every stand-in call so far.
    pub fn calls(&self) -> TestResult<Vec<Vec<String>>> {
        let text = match std::fs::read_to_string(self.path("kubeadm-standin/calls.jsonl")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)?;
                Ok(serde_json::from_value(v["argv"].clone())?)
            })
            .collect()
    }

    /// The first word of every call (`init`, `join`, `reset`).
    pub fn commands(&self) -> TestResult<Vec<String>> {
        Ok(self
            .calls()?
            .into_iter()
            .filter_map(|a| a.first().cloned())
            .collect())
    }

    /// Mode bits of `<root>/<rel>`.
    pub fn mode(&self, rel: &str) -> TestResult<u32> {
        Ok(std::fs::metadata(self.path(rel))?.permissions().mode() & 0o777)
    }
}

/// Reads a progress stream to its end.
pub async fn collect(
    stream: Result<tonic::Response<tonic::Streaming<ProgressEvent>>, tonic::Status>,
) -> TestResult<Vec<ProgressEvent>> {
    let mut stream = stream?.into_inner();
    let mut events = Vec::new();
    while let Some(e) = stream.message().await? {
        events.push(e);
    }
    Ok(events)
}

/// The final event's `already_done`, or its error.
pub fn outcome(events: &[ProgressEvent]) -> Result<bool, ApiError> {
    match events.last().and_then(|e| e.outcome.clone()) {
        Some(Outcome::Done(d)) => Ok(d.already_done),
        Some(Outcome::Error(e)) => Err(e),
        None => Err(ApiError {
            message: "stream ended without an outcome".into(),
            ..Default::default()
        }),
    }
}

/// Phases in order of first appearance.
pub fn phases(events: &[ProgressEvent]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in events {
        if !seen.contains(&e.phase) {
            seen.push(e.phase.clone());
        }
    }
    seen
}

/// A plain-HTTP stand-in for kubelet's `/healthz` answering 200 `ok`.
pub fn kubelet_healthz_standin() -> TestResult<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    Ok(addr)
}

/// A cluster CA (PEM cert, PEM key) and an HTTPS stand-in for the API
/// server's `/readyz` whose certificate (DNS name `kubernetes`, as kubeadm
/// issues it) that CA signed.
pub fn apiserver_readyz_standin() -> TestResult<(String, String, SocketAddr)> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubernetes");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::from_ca_cert_der(ca_cert.der(), &ca_key)?;
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec!["kubernetes".to_owned()])?
        .signed_by(&leaf_key, &issuer)?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )?;
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = [0u8; 1024];
            let _ = tls.read(&mut buf);
            let _ = tls.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    Ok((ca_cert.pem(), ca_key.serialize_pem(), addr))
}
