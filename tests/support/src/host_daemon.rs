//! Shared by the daemon's integration tests and the fan-in benchmark: a
//! temporary home with a real PKI, an in-process daemon on 127.0.0.1, and
//! simulated node agents built from the proto and real certificates.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use host_agent::daemon::{ControlClient, Daemon, DaemonConfig, NodeEntry};
use proto::v1::enrolment_client::EnrolmentClient;
use proto::v1::host_client::HostClient;
use proto::v1::{
    Check, CheckStatus, DiskUsage, EnrolRequest, EnrolResponse, HealthReport, ReportAck,
    SystemFigures,
};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, IsCa, Issuer, KeyPair,
    KeyUsagePurpose as Ku,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The nodes every test topology has: two clusters, one node each.
pub const NODE_A: &str = "app1-cp";
pub const NODE_B: &str = "app2-cp";
pub const NODE_A_IP: &str = "192.168.64.20";
pub const NODE_B_IP: &str = "192.168.64.30";

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A temporary `$HOSTCTL_HOME` with an initialised PKI.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub pki: Arc<certs::Pki>,
}

impl Home {
    pub fn new() -> Result<Home, BoxError> {
        install_crypto();
        let dir = tempfile::tempdir()?;
        // hostctl refuses a home other users can read (it holds keys).
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        let spec = certs::PkiSpec {
            clusters: vec![],
            host_sans: vec!["127.0.0.1".into(), "localhost".into()],
        };
        let pki = Arc::new(certs::Pki::open_or_init(dir.path(), &spec)?);
        Ok(Home { dir, pki })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn ca_pem(&self) -> String {
        self.pki.agent_ca_pem().to_owned()
    }

    /// The daemon configuration the tests use: loopback, free ports, two nodes.
    pub fn config(&self) -> DaemonConfig {
        let mut c = DaemonConfig::new(self.path().to_owned());
        c.port = 0;
        c.enrol_port = 0;
        let entry = |cluster: &str, ip: &str| NodeEntry {
            cluster: cluster.into(),
            addresses: ip.parse::<IpAddr>().into_iter().collect(),
        };
        c.nodes = BTreeMap::from([
            (NODE_A.to_owned(), entry("app1", NODE_A_IP)),
            (NODE_B.to_owned(), entry("app2", NODE_B_IP)),
        ]);
        c.control_planes = BTreeMap::from([
            ("app1".to_owned(), NODE_A.to_owned()),
            ("app2".to_owned(), NODE_B.to_owned()),
        ]);
        c
    }

    pub async fn start(&self) -> Result<Daemon, BoxError> {
        Ok(Daemon::start(self.config(), self.pki.clone()).await?)
    }

    pub async fn control(&self) -> Result<ControlClient, BoxError> {
        Ok(ControlClient::connect(&self.path().join("daemon.sock")).await?)
    }

    /// The agent CA as an rcgen issuer, to mint certificates the daemon
    /// never issued (expired, wrong EKU).
    pub fn agent_ca_issuer(&self) -> Result<Issuer<'static, KeyPair>, BoxError> {
        let key = std::fs::read_to_string(self.path().join("pki/agent/ca.key"))?;
        Ok(Issuer::from_ca_cert_pem(
            self.pki.agent_ca_pem(),
            KeyPair::from_pem(&key)?,
        )?)
    }

    pub fn token_store_path(&self) -> PathBuf {
        self.path().join("pki/agent/tokens.json")
    }
}

/// A clock the test moves by hand (`certs::Clock` for the daemon).
#[derive(Clone)]
pub struct TestClock(Arc<std::sync::Mutex<SystemTime>>);

impl TestClock {
    pub fn at(t: SystemTime) -> TestClock {
        TestClock(Arc::new(std::sync::Mutex::new(t)))
    }

    pub fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    /// As the daemon's clock.
    pub fn daemon_clock(&self) -> host_agent::daemon::DaemonClock {
        let me = self.clone();
        host_agent::daemon::DaemonClock(Arc::new(move || me.now()))
    }

    /// As a plain `certs::Clock`.
    pub fn clock(&self) -> Arc<dyn certs::Clock> {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

/// A certificate + key (PEM) for a simulated caller.
#[derive(Clone)]
pub struct Creds {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A calendar date (year, month, day).
pub type Ymd = (i32, u8, u8);

/// What a minted test certificate looks like.
pub struct Mint<'a> {
    pub cn: &'a str,
    pub roles: &'a [&'a str],
    pub ekus: Vec<Eku>,
    /// (not_before, not_after) as (year, month, day); `None` keeps rcgen's default.
    pub validity: Option<(Ymd, Ymd)>,
}

impl Mint<'_> {
    pub fn node(cn: &str) -> Mint<'_> {
        Mint {
            cn,
            roles: &[certs::ROLE_NODE],
            ekus: vec![Eku::ClientAuth, Eku::ServerAuth],
            validity: None,
        }
    }

    pub fn sign(&self, issuer: &Issuer<'_, KeyPair>) -> Result<Creds, BoxError> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, self.cn);
        for role in self.roles {
            p.distinguished_name
                .push(DnType::OrganizationName, (*role).to_owned());
        }
        p.is_ca = IsCa::ExplicitNoCa;
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![Ku::DigitalSignature];
        p.extended_key_usages = self.ekus.clone();
        if let Some((from, to)) = self.validity {
            p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
            p.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        }
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, issuer)?;
        Ok(Creds {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A self-signed CA unrelated to the agent CA.
pub fn foreign_ca() -> Result<Issuer<'static, KeyPair>, BoxError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name
        .push(DnType::CommonName, "hostctl agent CA");
    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![Ku::KeyCertSign, Ku::CrlSign, Ku::DigitalSignature];
    Ok(Issuer::new(p, KeyPair::generate()?))
}

/// A one-minute token for `node`, issued over the daemon's control socket
/// as `hostctl` would.
pub async fn issue_token(home: &Home, node: &str) -> Result<String, BoxError> {
    Ok(home
        .control()
        .await?
        .issue_token(node, Duration::from_secs(60))
        .await?
        .token)
}

/// Server-authenticated TLS to the enrolment port (no client certificate).
pub async fn enrol(
    ca_pem: &str,
    addr: SocketAddr,
    node: &str,
    token: &str,
) -> Result<(EnrolResponse, Creds), BoxError> {
    let (key_pem, csr_pem) = certs::generate_node_key_and_csr(node)?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("127.0.0.1");
    let ch = Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect()
        .await?;
    let resp = EnrolmentClient::new(ch)
        .enrol(EnrolRequest {
            node: node.into(),
            token: token.into(),
            csr_pem,
        })
        .await?
        .into_inner();
    let creds = Creds {
        cert_pem: resp.certificate_pem.clone(),
        key_pem,
    };
    Ok((resp, creds))
}

/// A mutual-TLS channel to the Host service (`creds: None` = no client cert).
pub async fn host_channel(
    ca_pem: &str,
    addr: SocketAddr,
    creds: Option<&Creds>,
) -> Result<Channel, BoxError> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("127.0.0.1");
    if let Some(c) = creds {
        tls = tls.identity(Identity::from_pem(&c.cert_pem, &c.key_pem));
    }
    Ok(Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?)
}

/// A plausible report from `node`.
pub fn report(node: &str, instance: &str, seq: u64, interval_seconds: u32) -> HealthReport {
    HealthReport {
        agent_instance: instance.into(),
        seq,
        taken_at: Some(proto::timestamp(SystemTime::now())),
        node: node.into(),
        system: Some(SystemFigures {
            cpu_percent: 12.5,
            memory_total_bytes: 4 << 30,
            memory_used_bytes: 1 << 30,
            disks: vec![DiskUsage {
                path: "/".into(),
                present: true,
                total_bytes: 20 << 30,
                available_bytes: 15 << 30,
            }],
            cpus: 2,
            ..Default::default()
        }),
        checks: vec![
            Check {
                name: "kubelet".into(),
                status: CheckStatus::Fail as i32,
                message: "not running".into(),
            },
            Check {
                name: "containerd".into(),
                status: CheckStatus::Pass as i32,
                message: String::new(),
            },
        ],
        interval_seconds,
        agent_version: "test".into(),
        ..Default::default()
    }
}

/// Sends `reports` on one stream, half-closes, and collects every ack
/// until the host ends the stream; an error status ends the collection.
pub async fn send_reports(
    channel: Channel,
    reports: Vec<HealthReport>,
) -> Result<Vec<ReportAck>, tonic::Status> {
    let mut client = HostClient::new(channel);
    let mut acks = client
        .report(tokio_stream::iter(reports))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(ack) = acks.message().await? {
        out.push(ack);
    }
    Ok(out)
}
