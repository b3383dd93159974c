//! TEST HARNESS — a stand-in for the host agent, for node-agent's
//! integration tests and benchmark only. It implements just enough of the
//! `Enrolment` and `Host` services (with the real `certs` PKI and token
//! store, real TLS on 127.0.0.1) to observe what a node agent does —
//! including `RenewCertificate`, signed like enrolment, with the client
//! certificate of every Report stream recorded. The real host (floors,
//! revocation, rate limits) lives in the host-agent crate.

pub mod proxy;
mod services;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certs::{NodeIdentitySpec, Pki, PkiSpec, ROLE_NODE};
use node_agent::agent::{self, Started};
use node_agent::config::{CommandRunnerKind, Config, HostEndpoints, LogSourceKind, Secret};
use node_agent::host_link::HostLink;
use proto::v1::HealthReport;
use proto::v1::enrolment_server::EnrolmentServer;
use proto::v1::host_server::HostServer;
pub use services::Seen;
pub use services::SeenCert;
use services::{EnrolSvc, HostSvc};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};

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

    /// Signs `csr_pem` for `node` as enrolment and renewal do.
    pub fn sign_node(&self, node: &str, csr_pem: &str) -> TestResult<String> {
        Ok(self.pki.sign_node_csr(csr_pem, &node_spec(node))?)
    }

    /// The same as the agent's own checked identity.
    pub fn agent_identity(&self, node: &str) -> TestResult<node_agent::identity::NodeIdentity> {
        let (key, csr) = certs::generate_node_key_and_csr(node)?;
        let cert = self.pki.sign_node_csr(&csr, &node_spec(node))?;
        Ok(node_agent::identity::NodeIdentity::check(
            &cert,
            &key,
            self.pki.agent_ca_pem(),
            node,
        )?)
    }

    /// A [`HostLink`] to `address` presenting a fresh identity for `node`.
    pub fn link(&self, node: &str, address: &str) -> TestResult<HostLink> {
        let cell = node_agent::identity::IdentityCell::new(self.agent_identity(node)?);
        Ok(HostLink::to(
            address,
            self.pki.agent_ca_pem(),
            "127.0.0.1",
            cell,
        ))
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

pub(crate) fn node_spec(node: &str) -> NodeIdentitySpec {
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
                seen: seen.clone(),
            }))
            .serve_with_incoming(TcpListenerStream::new(enrol_listener));
        let host = Server::builder()
            .tls_config(
                ServerTlsConfig::new()
                    .identity(identity)
                    .client_ca_root(pki.ca()),
            )?
            .add_service(HostServer::new(HostSvc {
                seen: seen.clone(),
                pki: pki.pki.clone(),
            }))
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

    /// Reads what the host has seen so far.
    pub fn with_seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> TestResult<T> {
        Ok(f(&*self.seen.lock().map_err(|_| "poisoned")?))
    }

    /// Makes `RenewCertificate` wait until `n` reports are stored.
    pub fn hold_renewal_until_stored(&self, n: usize) -> TestResult {
        self.seen
            .lock()
            .map_err(|_| "poisoned")?
            .hold_renewal_until_stored = n;
        Ok(())
    }

    /// Makes `RenewCertificate` fail with `code` and `message` (`None`:
    /// sign again).
    pub fn refuse_renewal(&self, refusal: Option<(tonic::Code, &str)>) -> TestResult {
        self.seen.lock().map_err(|_| "poisoned")?.refuse_renewal =
            refusal.map(|(c, m)| (c, m.to_owned()));
        Ok(())
    }

    /// Waits until `pred(seen)` holds, or fails after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Seen) -> bool,
    ) -> TestResult {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.with_seen(&pred)? {
            if tokio::time::Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
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
        host: HostEndpoints {
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
        metrics_listen: None,
        report_interval_seconds: 1,
        buffer_capacity: 1000,
        root: root.to_path_buf(),
        log_source: LogSourceKind::File,
        etcd: Default::default(),
        // Tests never run apt, modprobe or systemctl on the test machine.
        command_runner: CommandRunnerKind::Record,
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
