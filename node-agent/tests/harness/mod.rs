//! TEST HARNESS — a stand-in for the host agent, for node-agent's
//! integration tests and benchmark only. It implements just enough of the
//! `Enrolment` and `Host` services (with the real `certs` PKI and token
//! store, real TLS on 127.0.0.1) to observe what a node agent does. The
//! real host lives in the host-agent crate.
#![allow(dead_code)]

pub mod proxy;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certs::{NodeIdentitySpec, Pki, PkiSpec, ROLE_NODE};
use node_agent::agent::{self, Started};
use node_agent::config::{Config, HostConfig, LogSourceKind, Secret};
use proto::v1::enrolment_server::{Enrolment, EnrolmentServer};
use proto::v1::host_server::{Host, HostServer};
use proto::v1::{EnrolRequest, EnrolResponse, HealthReport, NodeMeta, ReportAck};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};
use tonic::{Request, Response, Status, Streaming};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Must run first in every test (deps.md gotcha 3).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A throw-away PKI with a host certificate for 127.0.0.1.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub pki: Arc<Pki>,
}

impl TestPki {
    pub fn new() -> TestResult<TestPki> {
        let dir = tempfile::tempdir()?;
        let spec = PkiSpec {
            clusters: vec![],
            host_sans: vec!["127.0.0.1".into()],
        };
        let pki = Pki::open_or_init(&dir.path().join("home"), &spec)?;
        Ok(TestPki {
            dir,
            pki: Arc::new(pki),
        })
    }

    pub fn issue_token(&self, node: &str) -> TestResult<String> {
        Ok(self
            .pki
            .token_store()
            .issue(node, Duration::from_secs(600))?)
    }

    /// A certificate with role `hostctl:node` for `node`, as if it enrolled.
    pub fn node_identity(&self, node: &str) -> TestResult<Identity> {
        let (key, csr) = certs::generate_node_key_and_csr(node)?;
        let cert = self.pki.sign_node_csr(&csr, &node_spec(node))?;
        Ok(Identity::from_pem(cert, key))
    }

    pub fn host_identity(&self) -> Identity {
        let id = self.pki.host_identity();
        Identity::from_pem(id.cert_pem, id.key_pem.expose())
    }

    pub fn admin_identity(&self) -> Identity {
        let id = self.pki.admin_identity();
        Identity::from_pem(id.cert_pem, id.key_pem.expose())
    }

    pub fn ca(&self) -> Certificate {
        Certificate::from_pem(self.pki.agent_ca_pem())
    }
}

fn node_spec(node: &str) -> NodeIdentitySpec {
    NodeIdentitySpec {
        name: node.to_owned(),
        addresses: vec![
            "127.0.0.1"
                .parse()
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        ],
        roles: vec![ROLE_NODE.to_owned()],
        validity_days: 30,
    }
}

/// What the harness host has seen.
#[derive(Default)]
pub struct Seen {
    /// Every report received, duplicates included, in arrival order.
    pub raw: Vec<HealthReport>,
    /// Reports stored (first copy of each (instance, seq)).
    pub stored: Vec<HealthReport>,
    keys: HashSet<(String, u64)>,
    /// Report streams refused because the report named another node.
    pub refused_impersonation: usize,
}

/// The harness host: Enrolment and Host services on 127.0.0.1.
pub struct HarnessHost {
    pub enrol_addr: SocketAddr,
    pub host_addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for HarnessHost {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl HarnessHost {
    /// Starts both services with the PKI's host identity.
    pub async fn start(pki: &TestPki) -> TestResult<HarnessHost> {
        Self::start_with_identity(pki, pki.host_identity()).await
    }

    /// Starts both services presenting `identity` (e.g. a certificate that
    /// does not carry 127.0.0.1, or one from another CA).
    pub async fn start_with_identity(pki: &TestPki, identity: Identity) -> TestResult<HarnessHost> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let enrol_listener = TcpListener::bind("127.0.0.1:0").await?;
        let host_listener = TcpListener::bind("127.0.0.1:0").await?;
        let (enrol_addr, host_addr) = (enrol_listener.local_addr()?, host_listener.local_addr()?);
        let enrol = Server::builder()
            .tls_config(ServerTlsConfig::new().identity(identity.clone()))?
            .add_service(EnrolmentServer::new(EnrolSvc {
                pki: pki.pki.clone(),
                host_endpoint: host_addr.to_string(),
            }))
            .serve_with_incoming(TcpListenerStream::new(enrol_listener));
        let host = Server::builder()
            .tls_config(
                ServerTlsConfig::new()
                    .identity(identity)
                    .client_ca_root(pki.ca()),
            )?
            .add_service(HostServer::new(HostSvc { seen: seen.clone() }))
            .serve_with_incoming(TcpListenerStream::new(host_listener));
        let tasks = vec![
            tokio::spawn(async move {
                let _ = enrol.await;
            }),
            tokio::spawn(async move {
                let _ = host.await;
            }),
        ];
        Ok(HarnessHost {
            enrol_addr,
            host_addr,
            seen,
            tasks,
        })
    }

    /// Stored reports so far.
    pub fn stored(&self) -> Vec<HealthReport> {
        self.seen
            .lock()
            .map(|s| s.stored.clone())
            .unwrap_or_default()
    }

    /// Every report received, duplicates included.
    pub fn raw(&self) -> Vec<HealthReport> {
        self.seen.lock().map(|s| s.raw.clone()).unwrap_or_default()
    }

    /// Waits until `pred(stored)` holds, or fails after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[HealthReport]) -> bool,
    ) -> TestResult<Vec<HealthReport>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stored = self.stored();
            if pred(&stored) {
                return Ok(stored);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "timed out waiting for {what}; stored seqs {:?}",
                    seqs(&stored)
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn seqs(reports: &[HealthReport]) -> Vec<u64> {
    reports.iter().map(|r| r.seq).collect()
}

struct EnrolSvc {
    pki: Arc<Pki>,
    host_endpoint: String,
}

#[tonic::async_trait]
impl Enrolment for EnrolSvc {
    async fn enrol(&self, req: Request<EnrolRequest>) -> Result<Response<EnrolResponse>, Status> {
        let r = req.into_inner();
        self.pki
            .token_store()
            .consume(&r.token, &r.node)
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        let cert = self
            .pki
            .sign_node_csr(&r.csr_pem, &node_spec(&r.node))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(EnrolResponse {
            meta: Some(NodeMeta {
                node: r.node,
                cluster: String::new(),
            }),
            certificate_pem: cert,
            ca_pem: self.pki.agent_ca_pem().to_owned(),
            host_endpoint: self.host_endpoint.clone(),
        }))
    }
}

struct HostSvc {
    seen: Arc<Mutex<Seen>>,
}

fn peer_cn<T>(req: &Request<T>) -> Option<String> {
    let certs = req.peer_certs()?;
    certs::common_name_of(certs.first()?.as_ref()).ok()?
}

#[tonic::async_trait]
impl Host for HostSvc {
    type ReportStream = ReceiverStream<Result<ReportAck, Status>>;

    async fn report(
        &self,
        req: Request<Streaming<HealthReport>>,
    ) -> Result<Response<Self::ReportStream>, Status> {
        let cn = peer_cn(&req).ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let seen = self.seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(report)) = inbound.message().await {
                if report.node != cn {
                    if let Ok(mut s) = seen.lock() {
                        s.refused_impersonation += 1;
                    }
                    let _ = tx
                        .send(Err(Status::permission_denied("report names another node")))
                        .await;
                    return;
                }
                let ack = ReportAck {
                    agent_instance: report.agent_instance.clone(),
                    seq: report.seq,
                };
                if let Ok(mut s) = seen.lock() {
                    s.raw.push(report.clone());
                    if s.keys.insert((report.agent_instance.clone(), report.seq)) {
                        s.stored.push(report);
                    }
                }
                if tx.send(Ok(ack)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// A node configuration pointing at `host_endpoint` (a harness or a
/// proxy in front of it).
pub fn node_config(
    pki: &TestPki,
    node: &str,
    enrol_addr: SocketAddr,
    host_endpoint: SocketAddr,
    root: &Path,
    token: Option<String>,
) -> Config {
    Config {
        node: node.to_owned(),
        cluster: "test".into(),
        control_plane: false,
        host: HostConfig {
            enrol_endpoint: enrol_addr.to_string(),
            endpoint: host_endpoint.to_string(),
            server_name: "127.0.0.1".into(),
        },
        ca_pem: pki.pki.agent_ca_pem().to_owned(),
        enrolment_token: token.map(Secret::new),
        state_dir: root.join("state"),
        listen: "127.0.0.1:0"
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0))),
        report_interval_seconds: 1,
        buffer_capacity: 1000,
        root: root.to_path_buf(),
        log_source: LogSourceKind::File,
        etcd: Default::default(),
        // Tests never run apt, modprobe or systemctl on the test machine.
        command_runner: node_agent::prereq::CommandRunnerKind::Record,
        kubeadm: Default::default(),
    }
}

pub fn state_path(root: &Path, file: &str) -> PathBuf {
    root.join("state").join(file)
}

/// A fresh PKI and a harness host serving it: the setup almost every
/// node-agent test starts with, kept in one place so each test only spells
/// out what it does differently.
pub struct Harness {
    pub pki: TestPki,
    pub host: HarnessHost,
}

impl Harness {
    /// Installs the crypto provider, then starts a harness host on a new PKI.
    pub async fn start() -> TestResult<Harness> {
        install_crypto();
        let pki = TestPki::new()?;
        let host = HarnessHost::start(&pki).await?;
        Ok(Harness { pki, host })
    }

    /// [`node_config`] for `node` under `root`, enrolling and reporting
    /// straight to this harness host.
    pub fn config(&self, node: &str, root: &Path, token: Option<String>) -> Config {
        node_config(
            &self.pki,
            node,
            self.host.enrol_addr,
            self.host.host_addr,
            root,
            token,
        )
    }

    /// [`Harness::config`] with a fresh enrolment token issued for `node`,
    /// i.e. an agent that will enrol on its first start.
    pub fn enrolling_config(&self, node: &str, root: &Path) -> TestResult<Config> {
        let token = self.pki.issue_token(node)?;
        Ok(self.config(node, root, Some(token)))
    }
}

/// A node agent running in this process (enrolled with its own harness
/// host, under its own root) until dropped — what the tests of the agent's
/// mTLS services (Node, Kubeadm, Provisioning) all need before their first
/// call.
pub struct RunningAgent {
    pub pki: TestPki,
    pub host: HarnessHost,
    pub root: tempfile::TempDir,
    /// Where the agent serves its gRPC services.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RunningAgent {
    /// Enrols node `n1` with a fresh token under a new root and runs it.
    pub async fn start() -> TestResult<RunningAgent> {
        let harness = Harness::start().await?;
        let root = tempfile::tempdir()?;
        let started = agent::start(harness.enrolling_config("n1", root.path())?).await?;
        Self::spawn(harness, root, started)
    }

    /// Runs `started` (an agent started against `harness` under `root`, for
    /// tests that adjust its config or endpoints first) in the background.
    pub fn spawn(
        harness: Harness,
        root: tempfile::TempDir,
        started: Started,
    ) -> TestResult<RunningAgent> {
        let addr = started.node_addr()?;
        let task = tokio::spawn(async move {
            let _ = started.run(std::future::pending()).await;
        });
        Ok(RunningAgent {
            pki: harness.pki,
            host: harness.host,
            root,
            addr,
            task,
        })
    }

    /// A channel to the agent's services that trusts the agent CA, expects
    /// the name 127.0.0.1 and presents `identity` (None: no client
    /// certificate), with `timeout` on each call.
    pub async fn channel(
        &self,
        identity: Option<Identity>,
        timeout: Duration,
    ) -> TestResult<Channel> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(self.pki.ca())
            .domain_name("127.0.0.1");
        if let Some(id) = identity {
            tls = tls.identity(id);
        }
        Ok(Endpoint::from_shared(format!("https://{}", self.addr))?
            .tls_config(tls)?
            .timeout(timeout)
            .connect()
            .await?)
    }
}
