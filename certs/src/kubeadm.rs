//! Per-cluster kubeadm trust material, generated on the host so that the host
//! can compute the discovery pin and mint an admin kubeconfig without asking
//! the cluster (the Cluster API bootstrap provider does the same).
//!
//! The files use kubeadm's own names under `certificatesDir`
//! (`/etc/kubernetes/pki`): kubeadm skips generating any CA whose `.crt` and
//! `.key` already exist, and reuses an `sa.key` that parses. All keys are
//! ECDSA P-256: kubeadm loads EC CA keys and EC `sa.key` (its v1beta4
//! `encryptionAlgorithm: ECDSA-P256` produces exactly those), and ring, the
//! only crypto backend in this workspace, cannot generate RSA keys.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::Rng;
use rcgen::KeyPair;

use crate::error::{PkiError, crypto_err};
use crate::identity::SecretPem;
use crate::inspect;
use crate::material::{self, KeyedCert, PairPaths, parse_key};
use crate::store::{self, CERT_MODE, KEY_MODE};

/// Whether missing material may be created (`open_or_init`) or is an error
/// (`open`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Create,
    LoadOnly,
}

/// One file to place on a control-plane node, relative to
/// `/etc/kubernetes/pki`. `Debug` omits the contents: half of these are keys.
#[derive(Clone, PartialEq, Eq)]
pub struct PlacedFile {
    /// Path relative to kubeadm's `certificatesDir`, e.g. `etcd/ca.key`.
    pub relative_path: String,
    /// The PEM text to write, exactly as stored on the host (keys included,
    /// hence the redacted `Debug`).
    pub contents: Vec<u8>,
    /// 0600 for keys, 0644 for certificates and `sa.pub`.
    pub mode: u32,
}

impl fmt::Debug for PlacedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlacedFile")
            .field("relative_path", &self.relative_path)
            .field("contents", &format_args!("[{} bytes]", self.contents.len()))
            .field("mode", &format_args!("{:04o}", self.mode))
            .finish()
    }
}

/// The CA set of one cluster: cluster CA, front-proxy CA, etcd CA and the
/// service-account signing key pair.
pub struct ClusterPki {
    name: String,
    dir: PathBuf,
    pub(crate) ca: KeyedCert,
    front_proxy_ca: KeyedCert,
    etcd_ca: KeyedCert,
    sa_key: SecretPem,
    sa_pub: String,
    ca_hash: String,
}

impl fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterPki")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("ca_cert_hash", &self.ca_hash)
            .finish_non_exhaustive()
    }
}

/// Fetches a CA in the given mode; in `LoadOnly` an absent CA is an error.
pub(crate) fn obtain_ca(paths: &PairPaths, cn: &str, mode: Mode) -> Result<KeyedCert, PkiError> {
    match mode {
        Mode::Create => material::load_or_create_ca(paths, cn),
        Mode::LoadOnly => material::load_ca(paths)?.ok_or_else(|| PkiError::NotInitialised {
            path: paths.cert.clone(),
        }),
    }
}

impl ClusterPki {
    /// Loads (and in `Create` mode completes) the CA set in `dir`.
    pub(crate) fn obtain(dir: &Path, name: &str, mode: Mode) -> Result<ClusterPki, PkiError> {
        let fix = format!(
            "restore it from a backup, or remove {} to create new CAs for cluster {name} (the cluster must then be rebuilt: its nodes trust the old CAs)",
            dir.display()
        );
        for d in [dir.to_path_buf(), dir.join("etcd")] {
            match mode {
                Mode::Create => store::ensure_private_dir(&d)?,
                Mode::LoadOnly => store::check_private_dir(&d)?,
            }
        }
        let ca = obtain_ca(&PairPaths::new(dir, "ca", &fix), "kubernetes", mode)?;
        let front_proxy_ca = obtain_ca(
            &PairPaths::new(dir, "front-proxy-ca", &fix),
            "front-proxy-ca",
            mode,
        )?;
        let etcd_ca = obtain_ca(
            &PairPaths::new(&dir.join("etcd"), "ca", &fix),
            "etcd-ca",
            mode,
        )?;
        let (sa_key, sa_pub) = obtain_sa(dir, &fix, mode)?;
        let ca_hash = inspect::spki_sha256_pin(&ca.cert_der)?;
        Ok(ClusterPki {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            ca,
            front_proxy_ca,
            etcd_ca,
            sa_key,
            sa_pub,
            ca_hash,
        })
    }

    /// The cluster name this CA set belongs to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster CA certificate (PEM): what workers and kubeconfigs trust.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    /// The service-account public key (`sa.pub`, PEM `PUBLIC KEY`): what
    /// verifies the cluster's service-account tokens, in the API server and
    /// in Vault's JWT auth mount for this cluster.
    pub fn sa_pub_pem(&self) -> &str {
        &self.sa_pub
    }

    /// kubeadm's `--discovery-token-ca-cert-hash` / `caCertHashes` entry:
    /// `sha256:` + hex SHA-256 of the cluster CA's SubjectPublicKeyInfo as
    /// encoded in `ca.crt`. Lets workers join without
    /// `unsafeSkipCAVerification` and without asking the control plane.
    pub fn ca_cert_hash(&self) -> String {
        self.ca_hash.clone()
    }

    /// Everything kubeadm accepts pre-placed in `/etc/kubernetes/pki`, with
    /// the modes to write them with. Ship this to the first control-plane
    /// node over the mTLS channel (never through user-data).
    pub fn files(&self) -> Vec<PlacedFile> {
        let file = |path: &str, contents: &str, mode: u32| PlacedFile {
            relative_path: path.to_owned(),
            contents: contents.as_bytes().to_vec(),
            mode,
        };
        vec![
            file("ca.crt", &self.ca.cert_pem, CERT_MODE),
            file("ca.key", self.ca.key_pem.expose(), KEY_MODE),
            file(
                "front-proxy-ca.crt",
                &self.front_proxy_ca.cert_pem,
                CERT_MODE,
            ),
            file(
                "front-proxy-ca.key",
                self.front_proxy_ca.key_pem.expose(),
                KEY_MODE,
            ),
            file("etcd/ca.crt", &self.etcd_ca.cert_pem, CERT_MODE),
            file("etcd/ca.key", self.etcd_ca.key_pem.expose(), KEY_MODE),
            file("sa.key", self.sa_key.expose(), KEY_MODE),
            file("sa.pub", &self.sa_pub, CERT_MODE),
        ]
    }
}

/// Loads or creates `sa.key` + `sa.pub` (PEM `PUBLIC KEY`), checking that the
/// public key really is the private key's: the API server verifies
/// service-account tokens with `sa.pub`, so a mismatch breaks every pod.
fn obtain_sa(dir: &Path, fix: &str, mode: Mode) -> Result<(SecretPem, String), PkiError> {
    let key_path = dir.join("sa.key");
    let pub_path = dir.join("sa.pub");
    match (store::exists(&key_path)?, store::exists(&pub_path)?) {
        (false, false) if mode == Mode::Create => {
            let key =
                KeyPair::generate().map_err(crypto_err("generate the service-account key"))?;
            let key_pem = key.serialize_pem();
            let pub_pem = key.public_key_pem();
            store::write_atomic(&key_path, key_pem.as_bytes(), KEY_MODE)?;
            store::write_atomic(&pub_path, pub_pem.as_bytes(), CERT_MODE)?;
            Ok((SecretPem::new(key_pem), pub_pem))
        }
        (false, false) => Err(PkiError::NotInitialised { path: key_path }),
        (true, false) => Err(PkiError::Incomplete {
            present: key_path,
            missing: pub_path,
            fix: fix.to_owned(),
        }),
        (false, true) => Err(PkiError::Incomplete {
            present: pub_path,
            missing: key_path,
            fix: fix.to_owned(),
        }),
        (true, true) => {
            let key_bytes = store::read_secret(&key_path)?;
            let key = parse_key(&key_path, &key_bytes, fix)?;
            let pub_bytes = store::read_public(&pub_path)?;
            let pub_der = std::str::from_utf8(&pub_bytes)
                .ok()
                .and_then(|t| pem::parse(t).ok())
                .filter(|p| p.tag() == "PUBLIC KEY")
                .map(pem::Pem::into_contents)
                .ok_or_else(|| PkiError::Damaged {
                    path: pub_path.clone(),
                    what: "not a PEM PUBLIC KEY (file is truncated or edited)".into(),
                    fix: fix.to_owned(),
                })?;
            if pub_der != rcgen::PublicKeyData::subject_public_key_info(&key) {
                return Err(PkiError::KeyMismatch {
                    key_path,
                    cert_path: pub_path,
                    fix: fix.to_owned(),
                });
            }
            let key_pem = String::from_utf8_lossy(&key_bytes).into_owned();
            let pub_pem = String::from_utf8_lossy(&pub_bytes).into_owned();
            Ok((SecretPem::new(key_pem), pub_pem))
        }
    }
}

/// A fresh kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`, from the
/// thread-local CSPRNG. Put the same value in `InitConfiguration` and in the
/// workers' `JoinConfiguration`.
pub fn bootstrap_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect()
    };
    let id = pick(6);
    let secret = pick(16);
    format!("{id}.{secret}")
}
