//! Shared test helpers: a throwaway `$HOSTCTL_HOME`, an OpenSSL runner (the
//! independent peer), and a fingerprint of every file under `pki/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use certs::{Pki, PkiSpec};
use sha2::{Digest, Sha256};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const OPENSSL: &str = "/usr/bin/openssl";

pub fn spec() -> PkiSpec {
    PkiSpec {
        clusters: vec!["mgmt".into(), "app1".into(), "app2".into()],
        host_sans: vec![
            "192.168.252.1".into(),
            "127.0.0.1".into(),
            "localhost".into(),
        ],
    }
}

pub fn init() -> Result<(tempfile::TempDir, Pki), Box<dyn std::error::Error>> {
    let home = tempfile::tempdir()?;
    let pki = Pki::open_or_init(home.path(), &spec())?;
    Ok((home, pki))
}

/// Runs openssl with `args`, feeding `stdin`; returns stdout, failing the
/// test with openssl's stderr if it exits non-zero.
pub fn openssl(args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut child = Command::new(OPENSSL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().ok_or("no stdin")?.write_all(stdin)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "openssl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out.stdout)
}

/// `openssl x509 -text -noout` of a PEM certificate.
pub fn x509_text(cert_pem: &str) -> Result<String, Box<dyn std::error::Error>> {
    Ok(String::from_utf8(openssl(
        &["x509", "-text", "-noout"],
        cert_pem.as_bytes(),
    )?)?)
}

/// Writes `contents` to `dir/name` and returns the path (for openssl args).
pub fn write(
    dir: &Path,
    name: &str,
    contents: &str,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let path = dir.join(name);
    std::fs::write(&path, contents)?;
    Ok(path)
}

/// `openssl verify -x509_strict [-purpose p] -CAfile ca leaf` must succeed.
pub fn assert_verifies(ca_pem: &str, leaf_pem: &str, purpose: Option<&str>) -> TestResult {
    let dir = tempfile::tempdir()?;
    let ca = write(dir.path(), "ca.pem", ca_pem)?;
    let leaf = write(dir.path(), "leaf.pem", leaf_pem)?;
    let mut args = vec!["verify", "-x509_strict"];
    if let Some(p) = purpose {
        args.extend(["-purpose", p]);
    }
    let (ca_s, leaf_s) = (ca.to_string_lossy(), leaf.to_string_lossy());
    args.extend(["-CAfile", &ca_s, &leaf_s]);
    let out = String::from_utf8(openssl(&args, b"")?)?;
    assert!(
        out.trim_end().ends_with(": OK"),
        "openssl verify said: {out}"
    );
    Ok(())
}

/// SHA-256 of every regular file under `dir`, keyed by relative path.
pub fn fingerprint(dir: &Path) -> Result<BTreeMap<PathBuf, String>, Box<dyn std::error::Error>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let digest = hex::encode(Sha256::digest(std::fs::read(&path)?));
                out.insert(path.strip_prefix(dir)?.to_path_buf(), digest);
            }
        }
    }
    Ok(out)
}

/// Every path (files and dirs) under `dir`.
pub fn walk(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
