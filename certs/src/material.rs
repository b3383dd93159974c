//! Certificate/key pairs on disk: load-and-check or create-once.
//!
//! The rule is "existing material is reused, never silently regenerated":
//! a pair that exists is loaded and checked (parses, key matches, CA is a CA,
//! leaf was issued by its CA, key is 0600); a pair that is entirely absent is
//! created; anything in between is an error naming the file and the fix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{Issuer, KeyPair, PublicKeyData};

use crate::error::{PkiError, crypto_err};
use crate::identity::{Identity, SecretPem};
use crate::inspect;
use crate::leaf;
use crate::params::{self, LeafSpec};
use crate::store::{self, CERT_MODE, KEY_MODE};

/// Leaves with less than this left are re-signed (same key) on open, so the
/// host and admin identities do not simply stop working after a year.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// Where a pair lives and what to tell the user if it is broken.
#[derive(Clone, Debug)]
pub(crate) struct PairPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Sentence telling the user how to recover, e.g. which directory to
    /// remove and what that costs.
    pub fix: String,
}

impl PairPaths {
    /// `<dir>/<stem>.crt` + `<dir>/<stem>.key`.
    pub fn new(dir: &Path, stem: &str, fix: impl Into<String>) -> Self {
        PairPaths {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
            fix: fix.into(),
        }
    }
}

/// A loaded, checked certificate with its key.
pub(crate) struct KeyedCert {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key: KeyPair,
    pub key_pem: SecretPem,
    pub paths: PairPaths,
}

impl fmt::Debug for KeyedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCert")
            .field("cert", &self.paths.cert)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Parses a PEM private key, describing failures in terms of `path`.
pub(crate) fn parse_key(path: &Path, bytes: &[u8], fix: &str) -> Result<KeyPair, PkiError> {
    let damaged = |what: &str| PkiError::Damaged {
        path: path.to_path_buf(),
        what: what.to_owned(),
        fix: fix.to_owned(),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| damaged("not a PEM file (not text)"))?;
    KeyPair::from_pem(text)
        .map_err(|_| damaged("not a valid PEM PKCS#8 private key (file is truncated or edited)"))
}

/// Parses a PEM certificate into DER, describing failures in terms of `path`.
fn parse_cert(path: &Path, bytes: &[u8], fix: &str) -> Result<(String, Vec<u8>), PkiError> {
    let damaged = |what: String| PkiError::Damaged {
        path: path.to_path_buf(),
        what,
        fix: fix.to_owned(),
    };
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| damaged("not a PEM file (not text)".into()))?;
    let der = inspect::cert_der_from_pem(&text).map_err(|e| damaged(e.to_string()))?;
    inspect::parse_der(&der).map_err(|e| damaged(e.to_string()))?;
    Ok((text, der))
}

impl KeyedCert {
    /// Loads the pair, or `None` if neither file exists.
    pub fn load(paths: &PairPaths) -> Result<Option<KeyedCert>, PkiError> {
        let (has_cert, has_key) = (store::exists(&paths.cert)?, store::exists(&paths.key)?);
        match (has_cert, has_key) {
            (false, false) => return Ok(None),
            (true, false) | (false, true) => {
                let (present, missing) = if has_cert {
                    (&paths.cert, &paths.key)
                } else {
                    (&paths.key, &paths.cert)
                };
                return Err(PkiError::Incomplete {
                    present: present.clone(),
                    missing: missing.clone(),
                    fix: paths.fix.clone(),
                });
            }
            (true, true) => {}
        }
        let key_bytes = store::read_secret(&paths.key)?;
        let key = parse_key(&paths.key, &key_bytes, &paths.fix)?;
        let cert_bytes = store::read_public(&paths.cert)?;
        let (cert_pem, cert_der) = parse_cert(&paths.cert, &cert_bytes, &paths.fix)?;
        let cert = inspect::parse_der(&cert_der)?;
        if cert.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(PkiError::KeyMismatch {
                key_path: paths.key.clone(),
                cert_path: paths.cert.clone(),
                fix: paths.fix.clone(),
            });
        }
        Ok(Some(KeyedCert {
            cert_pem,
            cert_der,
            key_pem: SecretPem::new(String::from_utf8_lossy(&key_bytes).into_owned()),
            key,
            paths: paths.clone(),
        }))
    }

    /// Writes key then certificate and returns the pair.
    fn store(
        paths: &PairPaths,
        key: KeyPair,
        cert_pem: String,
        cert_der: Vec<u8>,
    ) -> Result<KeyedCert, PkiError> {
        let key_pem = key.serialize_pem();
        store::write_atomic(&paths.key, key_pem.as_bytes(), KEY_MODE)?;
        store::write_atomic(&paths.cert, cert_pem.as_bytes(), CERT_MODE)?;
        Ok(KeyedCert {
            cert_pem,
            cert_der,
            key,
            key_pem: SecretPem::new(key_pem),
            paths: paths.clone(),
        })
    }

    /// An rcgen issuer for signing with this certificate as CA; the subject
    /// and key identifier come from the stored certificate so issued leaves
    /// chain to it exactly.
    pub fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), &self.key)
            .map_err(crypto_err("use a CA certificate as issuer"))
    }

    /// The certificate and key as an [`Identity`].
    pub fn identity(&self) -> Identity {
        Identity {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }
}

/// Loads the CA at `paths` (checking it is a CA), or creates it with `cn`.
pub(crate) fn load_or_create_ca(paths: &PairPaths, cn: &str) -> Result<KeyedCert, PkiError> {
    load_or_create_self_signed(paths, || params::ca_params(cn))
}

/// Loads the CA at `paths`, or creates it self-signed from `params`.
pub(crate) fn load_or_create_self_signed(
    paths: &PairPaths,
    params: impl FnOnce() -> rcgen::CertificateParams,
) -> Result<KeyedCert, PkiError> {
    if let Some(ca) = load_ca(paths)? {
        return Ok(ca);
    }
    let key = KeyPair::generate().map_err(crypto_err("generate a CA key"))?;
    let cert = params()
        .self_signed(&key)
        .map_err(crypto_err("self-sign a CA certificate"))?;
    KeyedCert::store(paths, key, cert.pem(), cert.der().to_vec())
}

/// Loads the CA at `paths` if present, checking it is a CA.
pub(crate) fn load_ca(paths: &PairPaths) -> Result<Option<KeyedCert>, PkiError> {
    let Some(ca) = KeyedCert::load(paths)? else {
        return Ok(None);
    };
    if !inspect::is_ca(&inspect::parse_der(&ca.cert_der)?) {
        return Err(PkiError::Damaged {
            path: paths.cert.clone(),
            what: "is not a CA certificate (basicConstraints CA:TRUE missing)".into(),
            fix: paths.fix.clone(),
        });
    }
    Ok(Some(ca))
}

/// Loads the leaf at `paths` (checking it was issued by `ca`), re-signing it
/// with its existing key when it is about to expire, or creates it.
pub(crate) fn load_or_create_leaf(
    paths: &PairPaths,
    ca: &KeyedCert,
    spec: &LeafSpec<'_>,
) -> Result<KeyedCert, PkiError> {
    let key = match load_leaf(paths, ca)? {
        None => KeyPair::generate().map_err(crypto_err("generate a key"))?,
        Some(leaf) => {
            let expires = inspect::not_after(&inspect::parse_der(&leaf.cert_der)?);
            if expires > SystemTime::now() + RENEW_BEFORE {
                return Ok(leaf);
            }
            leaf.key
        }
    };
    let (cert_pem, cert_der) = leaf::issue(spec, &key, ca)?;
    KeyedCert::store(paths, key, cert_pem, cert_der)
}

/// Issues a new certificate for the leaf at `paths` from `spec`, keeping its
/// key (a new key would gain nothing: the names changed, not the trust).
pub(crate) fn reissue_leaf(
    paths: &PairPaths,
    ca: &KeyedCert,
    spec: &LeafSpec<'_>,
) -> Result<KeyedCert, PkiError> {
    let key = match load_leaf(paths, ca)? {
        Some(leaf) => leaf.key,
        None => KeyPair::generate().map_err(crypto_err("generate a key"))?,
    };
    let (cert_pem, cert_der) = leaf::issue(spec, &key, ca)?;
    KeyedCert::store(paths, key, cert_pem, cert_der)
}

/// Loads the leaf at `paths` if present, checking it was issued by `ca`.
pub(crate) fn load_leaf(paths: &PairPaths, ca: &KeyedCert) -> Result<Option<KeyedCert>, PkiError> {
    let Some(leaf) = KeyedCert::load(paths)? else {
        return Ok(None);
    };
    let cert = inspect::parse_der(&leaf.cert_der)?;
    let issuer = inspect::parse_der(&ca.cert_der)?;
    if !inspect::is_issued_by(&cert, &issuer) {
        return Err(PkiError::WrongIssuer {
            cert_path: paths.cert.clone(),
            ca_path: ca.paths.cert.clone(),
            fix: paths.fix.clone(),
        });
    }
    Ok(Some(leaf))
}
