//! The certificate inventory behind `hostctl certs list`: every `.crt` under
//! `pki/`, described from the file itself (not from what we think we wrote),
//! so the listing also shows material that was replaced by hand.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{PkiError, io_err};
use crate::inspect;
use crate::store;

/// One certificate file, as `hostctl certs list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// The `.crt` file, under the `pki/` directory that was scanned.
    pub path: PathBuf,
    /// Subject in OpenSSL's one-line style, e.g. `O=hostctl:node, CN=app1-cp`.
    pub subject: String,
    /// Issuer in the same style; equal to `subject` for a self-signed CA.
    pub issuer: String,
    /// Organization values (roles/groups), in order.
    pub roles: Vec<String>,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// Whether basicConstraints says CA:TRUE (a trust root, not a leaf).
    pub is_ca: bool,
}

/// Describes every `*.crt` below `root`, sorted by path.
pub(crate) fn scan(root: &Path) -> Result<Vec<CertInfo>, PkiError> {
    let mut files = Vec::new();
    collect(root, &mut files)?;
    files.sort();
    files.iter().map(|p| describe(p)).collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PkiError> {
    for entry in std::fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let path = entry.map_err(io_err("listing", dir))?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "crt") {
            out.push(path);
        }
    }
    Ok(())
}

fn describe(path: &Path) -> Result<CertInfo, PkiError> {
    let damaged = |what: String| PkiError::Damaged {
        path: path.to_path_buf(),
        what,
        fix: "restore it from a backup or remove it (see docs: which material may be removed)"
            .into(),
    };
    let bytes = store::read_public(path)?;
    let text = String::from_utf8(bytes).map_err(|_| damaged("not a PEM file".into()))?;
    let der = inspect::cert_der_from_pem(&text).map_err(|e| damaged(e.to_string()))?;
    let cert = inspect::parse_der(&der).map_err(|e| damaged(e.to_string()))?;
    Ok(CertInfo {
        path: path.to_path_buf(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        roles: inspect::roles_of(&der)?,
        not_after: inspect::rfc3339(cert.validity().not_after.timestamp()),
        is_ca: inspect::is_ca(&cert),
    })
}
