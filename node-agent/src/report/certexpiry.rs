//! Nearest certificate expiry under `/etc/kubernetes/pki`.
//!
//! kubeadm certificates expire after a year and a cluster then stops
//! without much warning; reporting the nearest expiry lets the host warn
//! weeks ahead. Parsed results are cached by file size and mtime so a
//! steady-state report costs a `stat` per file, not a parse.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Deepest directory level searched (pki/ and pki/etcd/ in practice).
const MAX_DEPTH: usize = 3;

/// The certificate that expires first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nearest {
    /// The `.crt` file.
    pub path: PathBuf,
    /// Its notAfter.
    pub not_after: SystemTime,
}

type Stamp = (u64, Option<SystemTime>);

/// Remembers each file's notAfter until the file changes.
#[derive(Debug, Default)]
pub struct ExpiryScanner {
    cache: HashMap<PathBuf, (Stamp, Option<SystemTime>)>,
}

impl ExpiryScanner {
    /// The nearest-expiring `.crt` under `dir`; `None` when there is none.
    pub fn nearest(&mut self, dir: &Path) -> Option<Nearest> {
        let mut files = Vec::new();
        collect_crt(dir, 0, &mut files);
        self.cache.retain(|p, _| files.iter().any(|(f, _)| f == p));
        let mut best: Option<Nearest> = None;
        for (path, stamp) in files {
            let not_after = match self.cache.get(&path) {
                Some((s, v)) if *s == stamp => *v,
                _ => {
                    let v = read_not_after(&path);
                    self.cache.insert(path.clone(), (stamp, v));
                    v
                }
            };
            if let Some(t) = not_after
                && best.as_ref().is_none_or(|b| t < b.not_after)
            {
                best = Some(Nearest { path, not_after: t });
            }
        }
        best
    }
}

fn collect_crt(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, Stamp)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() && depth < MAX_DEPTH {
            collect_crt(&path, depth + 1, out);
        } else if meta.is_file() && path.extension().is_some_and(|e| e == "crt") {
            out.push((path, (meta.len(), meta.modified().ok())));
        }
    }
}

fn read_not_after(path: &Path) -> Option<SystemTime> {
    let der = CertificateDer::from_pem_file(path).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}
