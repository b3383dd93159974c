//! The Git server's TLS identity: a self-signed ECDSA P-256 certificate,
//! made once and kept in `$HOSTCTL_HOME/gitops/` (`server.key` 0600,
//! `server.crt` 0644), whose IP SANs are the addresses the server answers
//! on. Argo CD pins this very certificate (`configs.tls.certificates`,
//! keyed by the host address), and a client inspecting the repository
//! trusts it with `-c http.sslCAInfo=server.crt`; no CA of the PKI is
//! involved, so trusting it trusts nothing else.
//!
//! It is kept while it covers the addresses asked for, matches its key and
//! has more than [`RENEW_BEFORE`] left; otherwise a new one replaces it
//! (and the next `up` renders Argo CD's pin anew). The key is written
//! before the certificate, so a crash between the two leaves a pair that
//! does not match, which the next start replaces.

use super::error::GitopsError;
use crate::fsutil::write_atomic;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a new certificate is valid: as long as the PKI's CAs, since
/// replacing it means rendering Argo CD's pin again.
pub const VALIDITY: Duration = certs::CA_VALIDITY;

/// A certificate with less than this left is replaced at the next start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// The certificate's subject CN (for people inspecting it).
const COMMON_NAME: &str = "hostctl platform Git server";

/// The only protocol the server speaks (git's HTTP client uses HTTP/1.1).
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// `server.crt` under the gitops directory.
pub fn cert_path(gitops_dir: &Path) -> PathBuf {
    gitops_dir.join("server.crt")
}

/// `server.key` under the gitops directory.
pub fn key_path(gitops_dir: &Path) -> PathBuf {
    gitops_dir.join("server.key")
}

/// The serving certificate and its key (PEM).
#[derive(Clone)]
pub struct ServerIdentity {
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity").finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// The identity kept in `gitops_dir`, or a new one for `addresses` when
    /// there is none or it no longer fits (see the module docs).
    pub fn load_or_create(
        gitops_dir: &Path,
        addresses: &[IpAddr],
    ) -> Result<ServerIdentity, GitopsError> {
        super::repo::private_dir(gitops_dir)?;
        let kept = read_optional(&key_path(gitops_dir))?.zip(read_cert_pem(gitops_dir)?);
        if let Some((key_pem, cert_pem)) = kept {
            match unfit(&cert_pem, &key_pem, addresses) {
                None => return Ok(ServerIdentity { cert_pem, key_pem }),
                Some(why) => tracing::info!("the Git server's certificate is replaced: {why}"),
            }
        }
        let made = generate(addresses)?;
        write_atomic(&key_path(gitops_dir), made.key_pem.as_bytes(), 0o600)?;
        write_atomic(&cert_path(gitops_dir), made.cert_pem.as_bytes(), 0o644)?;
        Ok(made)
    }

    /// The certificate (PEM), as Argo CD pins it.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A TLS acceptor serving this identity, HTTP/1.1 only, no client
    /// authentication (the repository is read-only; what it holds is not
    /// secret from the clusters that sync it).
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, GitopsError> {
        let identity = |what| {
            move |e: rustls::pki_types::pem::Error| GitopsError::Identity {
                what,
                source: Box::new(e),
            }
        };
        let cert = CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(identity("certificate"))?;
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(identity("key"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(GitopsError::Tls)?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(GitopsError::Tls)?;
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// The kept certificate (PEM), `None` when there is none yet.
pub(crate) fn read_cert_pem(gitops_dir: &Path) -> Result<Option<String>, GitopsError> {
    read_optional(&cert_path(gitops_dir))
}

fn read_optional(path: &Path) -> Result<Option<String>, GitopsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fsio::Error::at("reading", path)(e).into()),
    }
}

/// Why the kept pair cannot serve `addresses` any more, if it cannot.
fn unfit(cert_pem: &str, key_pem: &str, addresses: &[IpAddr]) -> Option<String> {
    let der = match certs::cert_der_from_pem(cert_pem) {
        Ok(der) => der,
        Err(e) => return Some(format!("it cannot be read ({e})")),
    };
    let cert = match x509_parser::parse_x509_certificate(&der) {
        Ok((_, cert)) => cert,
        Err(e) => return Some(format!("it cannot be parsed ({e})")),
    };
    match rcgen::KeyPair::from_pem(key_pem) {
        Ok(key) if rcgen::PublicKeyData::subject_public_key_info(&key) == cert.public_key().raw => {
        }
        Ok(_) => return Some("it does not match the key".to_owned()),
        Err(e) => return Some(format!("the key cannot be read ({e})")),
    }
    let sans = certs::ip_sans_of(&der).unwrap_or_default();
    if let Some(missing) = addresses.iter().find(|a| !sans.contains(a)) {
        return Some(format!("it does not name {missing}"));
    }
    let not_after = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
    let renew_at = (UNIX_EPOCH + Duration::from_secs(not_after)).checked_sub(RENEW_BEFORE);
    if renew_at.is_none_or(|at| SystemTime::now() >= at) {
        return Some("it expires soon".to_owned());
    }
    None
}

/// A new self-signed serving certificate for `addresses` (IP SANs) and its
/// key.
fn generate(addresses: &[IpAddr]) -> Result<ServerIdentity, GitopsError> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
        KeyUsagePurpose, SanType,
    };
    let at = |t: SystemTime| {
        rcgen::date_time_ymd(1970, 1, 1) + t.duration_since(UNIX_EPOCH).unwrap_or_default()
    };
    let now = SystemTime::now();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, COMMON_NAME);
    params.distinguished_name = dn;
    params.not_before = at(now.checked_sub(certs::NODE_CERT_BACKDATE).unwrap_or(now));
    params.not_after = at(now + VALIDITY);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let mut sans: Vec<IpAddr> = Vec::new();
    for address in addresses {
        if !sans.contains(address) {
            sans.push(*address);
        }
    }
    params.subject_alt_names = sans.into_iter().map(SanType::IpAddress).collect();
    let key = rcgen::KeyPair::generate().map_err(GitopsError::Certificate)?;
    let cert = params.self_signed(&key).map_err(GitopsError::Certificate)?;
    Ok(ServerIdentity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn made_once_private_key_public_certificate_and_kept_while_it_fits() {
        let home = tempfile::tempdir().expect("home");
        let dir = home.path().join("gitops");
        let addresses = [ip("192.168.64.1"), ip("127.0.0.1")];
        let first = ServerIdentity::load_or_create(&dir, &addresses).expect("made");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&key_path(&dir)), 0o600);
        assert_eq!(mode(&cert_path(&dir)), 0o644);
        let der = certs::cert_der_from_pem(first.cert_pem()).expect("der");
        assert_eq!(certs::ip_sans_of(&der).expect("sans"), addresses);
        first.acceptor().expect("rustls takes it");

        let again = ServerIdentity::load_or_create(&dir, &addresses[..1]).expect("kept");
        assert_eq!(again.cert_pem(), first.cert_pem());

        let moved = ServerIdentity::load_or_create(&dir, &[ip("192.168.65.1")]).expect("new");
        assert_ne!(
            moved.cert_pem(),
            first.cert_pem(),
            "a new address needs a new SAN"
        );
        assert_eq!(
            read_cert_pem(&dir).expect("read").as_deref(),
            Some(moved.cert_pem())
        );
    }

    #[test]
    fn a_certificate_that_does_not_match_its_key_is_replaced() {
        let home = tempfile::tempdir().expect("home");
        let dir = home.path().join("gitops");
        let addresses = [ip("127.0.0.1")];
        let first = ServerIdentity::load_or_create(&dir, &addresses).expect("made");
        let other = generate(&addresses).expect("other");
        write_atomic(&key_path(&dir), other.key_pem.as_bytes(), 0o600).expect("key");
        let next = ServerIdentity::load_or_create(&dir, &addresses).expect("replaced");
        assert_ne!(next.cert_pem(), first.cert_pem());
        assert!(unfit(next.cert_pem(), &next.key_pem, &addresses).is_none());
    }
}
