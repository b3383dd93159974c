//! A real etcd (Debian's `etcd-server`, 3.4) for tests and benchmarks: on
//! loopback with random ports (or, like kubeadm, on loopback *and* a node
//! address inside a network namespace), TLS and client-certificate
//! authentication, with kubeadm's file layout under a test root, killed on
//! drop. Depends on nothing of either agent; host-agent's and node-agent's
//! tests, the `tests` crate's suites and node-agent's snapshot benchmark
//! use it.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, IsCa, Issuer,
    KeyPair, KeyUsagePurpose as Ku,
};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// kubeadm's etcd PKI under `<root>/etc/kubernetes/pki/etcd`.
pub struct EtcdPki {
    pub dir: PathBuf,
}

impl EtcdPki {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("healthcheck-client.crt")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("healthcheck-client.key")
    }
}

fn leaf(
    cn: &str,
    sans: Vec<String>,
    eku: Vec<Eku>,
    issuer: &Issuer<'_, KeyPair>,
) -> TestResult<(String, String)> {
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![Ku::DigitalSignature, Ku::KeyEncipherment];
    p.extended_key_usages = eku;
    let key = KeyPair::generate()?;
    Ok((p.signed_by(&key, issuer)?.pem(), key.serialize_pem()))
}

/// Mints an etcd CA, a server certificate for 127.0.0.1 and kubeadm's
/// healthcheck client certificate under `root`.
pub fn mint_etcd_pki(root: &Path) -> TestResult<EtcdPki> {
    mint_etcd_pki_for(root, &[])
}

/// [`mint_etcd_pki`] with the server certificate also valid for
/// `addresses` (a node's own address, as kubeadm's etcd server cert is).
pub fn mint_etcd_pki_for(root: &Path, addresses: &[IpAddr]) -> TestResult<EtcdPki> {
    let dir = root.join("etc/kubernetes/pki/etcd");
    std::fs::create_dir_all(&dir)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, "etcd-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![Ku::KeyCertSign, Ku::CrlSign, Ku::DigitalSignature];
    let ca_key = KeyPair::generate()?;
    std::fs::write(dir.join("ca.crt"), ca.self_signed(&ca_key)?.pem())?;
    let issuer = Issuer::new(ca, ca_key);
    let mut sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    sans.extend(addresses.iter().map(IpAddr::to_string));
    let (c, k) = leaf(
        "etcd-server",
        sans,
        vec![Eku::ServerAuth, Eku::ClientAuth],
        &issuer,
    )?;
    std::fs::write(dir.join("server.crt"), c)?;
    std::fs::write(dir.join("server.key"), k)?;
    let (c, k) = leaf(
        "kube-etcd-healthcheck-client",
        vec![],
        vec![Eku::ClientAuth],
        &issuer,
    )?;
    std::fs::write(dir.join("healthcheck-client.crt"), c)?;
    std::fs::write(dir.join("healthcheck-client.key"), k)?;
    Ok(EtcdPki { dir })
}

/// A free loopback port (bound then released).
pub fn free_port() -> TestResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One etcd member process.
pub struct Etcd {
    child: Child,
    pub client_port: u16,
    pub data_dir: PathBuf,
    address: IpAddr,
    pki_dir: PathBuf,
}

/// Loopback: where a member listens unless told otherwise.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How to start a member.
#[derive(Debug, Clone)]
pub struct EtcdSpec {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    /// The address clients and peers use; the member also listens on
    /// loopback, as kubeadm's does ([`LOOPBACK`] for loopback only).
    pub address: IpAddr,
    /// Run inside this network namespace (`ip netns exec`), e.g. a local
    /// provider node's, so the node sees it on its own loopback.
    pub netns: Option<String>,
}

impl EtcdSpec {
    /// A loopback member in this network namespace.
    pub fn loopback(name: &str, client_port: u16, peer_port: u16, data_dir: PathBuf) -> Self {
        EtcdSpec {
            name: name.to_owned(),
            client_port,
            peer_port,
            data_dir,
            address: LOOPBACK,
            netns: None,
        }
    }
    pub fn peer_url(&self) -> String {
        format!("http://{}:{}", self.address, self.peer_port)
    }
    pub fn initial_cluster(&self) -> String {
        format!("{}={}", self.name, self.peer_url())
    }
    pub fn endpoint(&self) -> String {
        format!("https://{}:{}", self.address, self.client_port)
    }

    /// Client URLs: loopback, plus the address when it is another one.
    fn listen_client_urls(&self) -> String {
        let loopback = format!("https://{LOOPBACK}:{}", self.client_port);
        if self.address == LOOPBACK {
            loopback
        } else {
            format!("{loopback},{}", self.endpoint())
        }
    }

    /// `etcd`, or `ip netns exec <ns> etcd` (which execs, so the child's
    /// pid is etcd's and killing it stops etcd).
    fn command(&self) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "etcd"]);
                c
            }
            None => Command::new("etcd"),
        }
    }
}

impl Etcd {
    /// Starts etcd per `spec` and waits until it answers.
    pub fn start(pki: &EtcdPki, spec: &EtcdSpec) -> TestResult<Etcd> {
        let d = &pki.dir;
        if let Some(parent) = spec.data_dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let log = std::fs::File::create(format!("{}.log", spec.data_dir.display()))?;
        let child = spec
            .command()
            .arg(format!("--name={}", spec.name))
            .arg(format!("--data-dir={}", spec.data_dir.display()))
            .arg(format!(
                "--listen-client-urls={}",
                spec.listen_client_urls()
            ))
            .arg(format!("--advertise-client-urls={}", spec.endpoint()))
            .arg(format!("--listen-peer-urls={}", spec.peer_url()))
            .arg(format!("--initial-advertise-peer-urls={}", spec.peer_url()))
            .arg(format!("--initial-cluster={}", spec.initial_cluster()))
            .arg(format!("--cert-file={}", d.join("server.crt").display()))
            .arg(format!("--key-file={}", d.join("server.key").display()))
            .arg(format!("--trusted-ca-file={}", d.join("ca.crt").display()))
            .arg("--client-cert-auth")
            .arg("--quota-backend-bytes=4294967296")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut etcd = Etcd {
            child,
            client_port: spec.client_port,
            data_dir: spec.data_dir.clone(),
            address: spec.address,
            pki_dir: d.clone(),
        };
        // Generous: on a loaded 2-core machine a first start can take long;
        // an etcd that exited (a port taken meanwhile, say) fails at once.
        let deadline = Instant::now() + Duration::from_secs(120);
        let log = || {
            let path = format!("{}.log", spec.data_dir.display());
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            format!(
                "{path}: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        };
        while etcd.ctl(&["endpoint", "health"]).is_err() {
            if let Some(status) = etcd.child.try_wait()? {
                return Err(
                    format!("etcd exited ({status}) before it was healthy; {}", log()).into(),
                );
            }
            if Instant::now() > deadline {
                return Err(format!("etcd did not become healthy in 120 s; {}", log()).into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(etcd)
    }

    pub fn endpoint(&self) -> String {
        format!("https://{}:{}", self.address, self.client_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `etcdctl` (API v3) against this member with the client certificate.
    pub fn ctl(&self, args: &[&str]) -> TestResult<String> {
        etcdctl(&self.pki_dir, &self.endpoint(), args)
    }

    /// Writes `n` keys `prefix0..` with values of `size` bytes.
    pub fn put_keys(&self, prefix: &str, n: usize) -> TestResult {
        for i in 0..n {
            self.ctl(&["put", &format!("{prefix}{i}"), &format!("value-{i}")])?;
        }
        Ok(())
    }

    /// The current revision as `etcdctl endpoint status` reports it.
    pub fn revision(&self) -> TestResult<i64> {
        let out = self.ctl(&["endpoint", "status", "-w", "json"])?;
        let v: serde_json::Value = serde_json::from_str(&out)?;
        v[0]["Status"]["header"]["revision"]
            .as_i64()
            .ok_or_else(|| format!("no revision in {out}").into())
    }
}

/// Runs `etcdctl` with the kubeadm client certificate from `pki_dir`.
pub fn etcdctl(pki_dir: &Path, endpoint: &str, args: &[&str]) -> TestResult<String> {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg(format!("--cacert={}", pki_dir.join("ca.crt").display()))
        .arg(format!(
            "--cert={}",
            pki_dir.join("healthcheck-client.crt").display()
        ))
        .arg(format!(
            "--key={}",
            pki_dir.join("healthcheck-client.key").display()
        ))
        .arg("--dial-timeout=2s")
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `etcdctl snapshot status -w json` of a file (no server needed).
pub fn snapshot_status(file: &Path) -> TestResult<serde_json::Value> {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(file)
        .output()?;
    if !out.status.success() {
        return Err(format!("snapshot status: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
