//! Read-only questions about certificates: who is this, which roles does it
//! carry, which key is inside. The host's authorisation layer asks these of
//! peer certificates, so they take DER (what TLS hands over) and never panic.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::error::PkiError;

/// Role of a node agent; granted only through CSR signing after enrolment.
pub const ROLE_NODE: &str = "hostctl:node";
/// Role of the operator's CLI.
pub const ROLE_ADMIN: &str = "hostctl:admin";
/// Role of the host agent itself (it serves nodes and also calls them).
pub const ROLE_HOST: &str = "hostctl:host";
/// Role of mgmt's Prometheus: it may read the agents' `/metrics` and
/// nothing else (docs/observability.md, "hostctl's own metrics").
pub const ROLE_METRICS: &str = "hostctl:metrics";

/// Parses DER, turning parser errors into our error type.
pub(crate) fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(PkiError::BadCertificate {
            reason: "trailing bytes after the certificate".into(),
        }),
        Err(e) => Err(PkiError::BadCertificate {
            reason: e.to_string(),
        }),
    }
}

/// Extracts the DER of the first `CERTIFICATE` block of a PEM document.
pub fn cert_der_from_pem(pem_text: &str) -> Result<Vec<u8>, PkiError> {
    let block = pem::parse(pem_text).map_err(|e| PkiError::BadCertificate {
        reason: format!("not PEM: {e}"),
    })?;
    if block.tag() != "CERTIFICATE" {
        return Err(PkiError::BadCertificate {
            reason: format!("PEM block is {:?}, not CERTIFICATE", block.tag()),
        });
    }
    Ok(block.into_contents())
}

/// The roles a certificate grants: one per Organization attribute, in order,
/// as Talos encodes them. Unknown roles are returned too, so a newer host can
/// add roles without older tooling dropping them.
pub fn roles_of(cert_der: &[u8]) -> Result<Vec<String>, PkiError> {
    let cert = parse_der(cert_der)?;
    cert.subject()
        .iter_organization()
        .map(|o| {
            o.as_str()
                .map(str::to_owned)
                .map_err(|e| PkiError::BadCertificate {
                    reason: format!("Organization is not a string: {e}"),
                })
        })
        .collect()
}

/// The subject Common Name, which for node certificates is the node name the
/// host fixed at enrolment; `None` if the subject has no CN.
pub fn common_name_of(cert_der: &[u8]) -> Result<Option<String>, PkiError> {
    let cert = parse_der(cert_der)?;
    let cn = cert.subject().iter_common_name().next();
    cn.map(|cn| {
        cn.as_str()
            .map(str::to_owned)
            .map_err(|e| PkiError::BadCertificate {
                reason: format!("Common Name is not a string: {e}"),
            })
    })
    .transpose()
}

/// The IP-address SANs, so the host can check a node calls from the address
/// its certificate was issued for.
pub fn ip_sans_of(cert_der: &[u8]) -> Result<Vec<IpAddr>, PkiError> {
    Ok(sans_of(cert_der)?.0)
}

/// IP and DNS SANs of a certificate.
pub(crate) fn sans_of(cert_der: &[u8]) -> Result<(Vec<IpAddr>, Vec<String>), PkiError> {
    let cert = parse_der(cert_der)?;
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::BadCertificate {
            reason: format!("bad subjectAltName: {e}"),
        })?;
    for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
        match name {
            GeneralName::IPAddress(b) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                    ips.push(IpAddr::from(v4));
                } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                    ips.push(IpAddr::from(v6));
                }
            }
            GeneralName::DNSName(d) => dns.push((*d).to_owned()),
            _ => {}
        }
    }
    Ok((ips, dns))
}

/// `sha256:` + lowercase hex of the SHA-256 of the certificate's
/// SubjectPublicKeyInfo exactly as encoded in the certificate — kubeadm's
/// `pubkeypin.Hash` over Go's `RawSubjectPublicKeyInfo`. Hashing the parsed
/// bytes (not a re-encoding of the key) is what makes the pin match kubeadm.
pub fn spki_sha256_pin(cert_der: &[u8]) -> Result<String, PkiError> {
    let cert = parse_der(cert_der)?;
    let digest = Sha256::digest(cert.public_key().raw);
    Ok(format!("sha256:{}", hex::encode(digest)))
}

/// Whether the certificate says CA:TRUE in basicConstraints.
pub(crate) fn is_ca(cert: &X509Certificate<'_>) -> bool {
    cert.is_ca()
}

/// The certificate's notAfter as a `SystemTime` (clamped at the epoch).
pub(crate) fn not_after(cert: &X509Certificate<'_>) -> SystemTime {
    let secs = cert.validity().not_after.timestamp();
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// Whether `cert` carries a valid signature by `issuer`'s key and names it as
/// issuer; used to refuse a leaf that was copied in from another PKI.
pub(crate) fn is_issued_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.issuer() == issuer.subject() && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Formats a Unix timestamp as RFC 3339 UTC (`2035-01-02T03:04:05Z`); a
/// value outside the calendar jiff supports shows as `@<seconds>`.
pub fn rfc3339(unix_secs: i64) -> String {
    match jiff::Timestamp::from_second(unix_secs) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("@{unix_secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(2_067_321_845), "2035-07-06T08:04:05Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(roles_of(b"not a certificate").is_err());
        assert!(common_name_of(&[]).is_err());
        assert!(
            cert_der_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .is_err()
        );
    }
}
