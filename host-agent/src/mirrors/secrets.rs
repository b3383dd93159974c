//! The mirrors' generated credentials (`mirrors/credentials.json`, 0600)
//! and Harbor's serving certificate, issued by the lab root for the
//! host's address on the node network (what the nodes' containerd and
//! helm verify against `ca =` / `--ca-file`).

use super::error::MirrorError;
use super::layout::Layout;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::net::Ipv4Addr;

/// Generated once, kept: changing them would lock hostctl out of its own
/// mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub harbor_admin_password: String,
    pub harbor_database_password: String,
    pub nexus_admin_password: String,
}

/// 24 random bytes as hex, from the kernel's generator.
fn random_secret() -> Result<String, MirrorError> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(MirrorError::io("/dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Credentials {
    /// The home's credentials, generated and written (0600) on first use.
    pub fn load_or_create(layout: &Layout) -> Result<Credentials, MirrorError> {
        let path = layout.credentials();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MirrorError::Config {
                what: path.display().to_string(),
                reason: format!(
                    "{e}; restore it from a backup (the mirrors' admin passwords are in it)"
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh = Credentials {
                    harbor_admin_password: random_secret()?,
                    harbor_database_password: random_secret()?,
                    nexus_admin_password: random_secret()?,
                };
                fsio::write_json_atomic(&path, &fresh, 0o600)
                    .map_err(|e| MirrorError::io(&path)(std::io::Error::other(e.to_string())))?;
                Ok(fresh)
            }
            Err(e) => Err(MirrorError::io(&path)(e)),
        }
    }
}

/// Helm's registry config for Harbor (`{"auths": {"<host>:8443": {"auth":
/// base64(admin:password)}}}`, the docker `config.json` shape helm's OCI
/// client reads), written 0600 so the password never goes on argv.
pub fn write_helm_registry_config(
    layout: &Layout,
    authority: &str,
    password: &str,
) -> Result<(), MirrorError> {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"));
    let doc = serde_json::json!({"auths": {authority: {"auth": auth}}});
    let path = layout.helm_registry_config();
    fsio::write_json_atomic(&path, &doc, 0o600)
        .map_err(|e| MirrorError::io(&path)(std::io::Error::other(e.to_string())))
}

/// What [`ensure_harbor_tls`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HarborTls {
    /// The pair there fits (this root, this address, not near its end).
    Kept,
    /// There was none.
    Issued,
    /// The pair there no longer fit, for this reason.
    Reissued(String),
}

impl HarborTls {
    /// The line `mirrors up` reports, if anything changed.
    pub fn change(&self) -> Option<String> {
        match self {
            HarborTls::Kept => None,
            HarborTls::Issued => Some("Harbor's certificate issued by the lab root".into()),
            HarborTls::Reissued(why) => Some(format!(
                "Harbor's certificate re-issued by the lab root: {why}"
            )),
        }
    }
}

/// Harbor's TLS pair under `harbor/tls/`, issued by the lab root for
/// `host`; a pair already there is kept only while it fits
/// ([`certs::LabRoot::serving_fit`]): the host's address changes with the
/// provider's network, and the nodes would refuse a certificate without it.
pub fn ensure_harbor_tls(
    layout: &Layout,
    lab: &certs::LabRoot,
    host: Ipv4Addr,
) -> Result<HarborTls, MirrorError> {
    let dir = layout.harbor().join("tls");
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let outcome = match (std::fs::read_to_string(&cert), key.exists()) {
        (Ok(pem), true) => {
            match lab.serving_fit(&pem, &[host.into()], std::time::SystemTime::now()) {
                certs::ServingFit::Fits => return Ok(HarborTls::Kept),
                certs::ServingFit::Reissue(why) => HarborTls::Reissued(why),
            }
        }
        _ => HarborTls::Issued,
    };
    let pair = lab.issue_server("hostctl harbor", &[host.into()], &[])?;
    let write = |path: &std::path::Path, bytes: &[u8], mode| {
        fsio::write_atomic(path, bytes, mode)
            .map_err(|e| MirrorError::io(path)(std::io::Error::other(e.to_string())))
    };
    std::fs::create_dir_all(&dir).map_err(MirrorError::io(&dir))?;
    // Key first: a crash between the two leaves the old certificate (or
    // none) beside the new key, and the old one still does not fit, so the
    // next run issues the pair again.
    write(&key, pair.key_pem.expose().as_bytes(), 0o600)?;
    write(&cert, pair.cert_pem.as_bytes(), 0o644)?;
    Ok(outcome)
}
