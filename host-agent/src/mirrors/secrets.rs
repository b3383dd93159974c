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

/// Harbor's TLS pair under `harbor/tls/`, issued by the lab root for
/// `host` unless a pair is already there.
pub fn ensure_harbor_tls(
    layout: &Layout,
    lab: &certs::LabRoot,
    host: Ipv4Addr,
) -> Result<bool, MirrorError> {
    let dir = layout.harbor().join("tls");
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    if cert.exists() && key.exists() {
        return Ok(false);
    }
    let pair = lab.issue_server("hostctl harbor", &[host.into()], &[])?;
    let write = |path: &std::path::Path, bytes: &[u8], mode| {
        fsio::write_atomic(path, bytes, mode)
            .map_err(|e| MirrorError::io(path)(std::io::Error::other(e.to_string())))
    };
    std::fs::create_dir_all(&dir).map_err(MirrorError::io(&dir))?;
    write(&key, pair.key_pem.expose().as_bytes(), 0o600)?;
    write(&cert, pair.cert_pem.as_bytes(), 0o644)?;
    Ok(true)
}
