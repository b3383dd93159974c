//! The two certificate shapes this crate issues — CA and leaf — defined once,
//! so the agent CA, the kubeadm CAs and the Cluster Mesh CA cannot drift apart,
//! and neither can the host, admin, node and kubeconfig leaves.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose as Eku,
    IsCa, KeyUsagePurpose as Ku, SanType, SerialNumber,
};

use crate::error::{PkiError, crypto_err};

/// CA lifetime: ten years, as kubeadm, Cluster API and Talos use.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Lifetime of host/admin identities and kubeconfig client certificates.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 86_400);
/// Certificates start five minutes in the past (as Cluster API does) so a VM
/// whose clock lags the host a little still accepts them.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// What a leaf certificate says about its holder. The issuer decides every
/// field; nothing is copied from a request.
pub(crate) struct LeafSpec<'a> {
    pub common_name: &'a str,
    pub organizations: &'a [String],
    pub ips: &'a [IpAddr],
    pub dns_names: &'a [String],
    pub server_auth: bool,
    pub client_auth: bool,
    pub validity: Duration,
    /// The earliest notBefore allowed (a node's revocation floor, see
    /// [`crate::floors`]); `None` for the usual five minutes back.
    pub not_before_at_least: Option<SystemTime>,
}

/// A random 127-bit positive serial: RFC 5280 wants serials unique per CA,
/// and rcgen's default (a hash of the public key) repeats when a node
/// re-enrols with the same key.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x40;
    SerialNumber::from_slice(&bytes)
}

fn base(
    common_name: &str,
    validity: Duration,
    not_before_at_least: Option<SystemTime>,
) -> CertificateParams {
    // A closure, so the `time` type rcgen uses need not be named here.
    let at = |t: SystemTime| {
        rcgen::date_time_ymd(1970, 1, 1) + t.duration_since(UNIX_EPOCH).unwrap_or_default()
    };
    let now = SystemTime::now();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    let not_before = now.checked_sub(BACKDATE).unwrap_or(now);
    p.not_before = at(not_before.max(not_before_at_least.unwrap_or(not_before)));
    p.not_after = at(now + validity);
    p.serial_number = Some(random_serial());
    p
}

/// A self-signed CA in Cluster API's shape: CA:TRUE with pathlen 0 (it signs
/// only leaves), keyCertSign + cRLSign + digitalSignature. keyEncipherment is
/// left out on purpose: every key here is ECDSA, and RFC 5480 §3 does not
/// allow keyEncipherment for EC keys (kubeadm and Go do not require it).
pub(crate) fn ca_params(common_name: &str) -> CertificateParams {
    let mut p = base(common_name, CA_VALIDITY, None);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![Ku::KeyCertSign, Ku::CrlSign, Ku::DigitalSignature];
    p
}

/// The lab root: a self-signed CA that may sign one level of CAs below it
/// (pathlen 1) — Vault's PKI intermediate and each cluster's phase-1
/// cert-manager CA — and never leaves the host.
pub(crate) fn root_params(common_name: &str) -> CertificateParams {
    let mut p = ca_params(common_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p
}

/// A CA below the lab root (pathlen 0: it signs only leaves), with the
/// authority key identifier so verifiers find the root.
pub(crate) fn intermediate_params(common_name: &str, validity: Duration) -> CertificateParams {
    let mut p = base(common_name, validity, None);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![Ku::KeyCertSign, Ku::CrlSign, Ku::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    p
}

/// A leaf as described by `spec`, with the authority key identifier set so
/// verifiers can pick the right CA when several are trusted. The subject
/// holds only the CN; `leaf::issue` writes the Organization attributes.
pub(crate) fn leaf_params(spec: &LeafSpec<'_>) -> Result<CertificateParams, PkiError> {
    let mut p = base(spec.common_name, spec.validity, spec.not_before_at_least);
    p.is_ca = IsCa::ExplicitNoCa;
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![Ku::DigitalSignature];
    if spec.server_auth {
        p.extended_key_usages.push(Eku::ServerAuth);
    }
    if spec.client_auth {
        p.extended_key_usages.push(Eku::ClientAuth);
    }
    p.subject_alt_names = spec.ips.iter().copied().map(SanType::IpAddress).collect();
    for name in spec.dns_names {
        let ia5 = name
            .clone()
            .try_into()
            .map_err(crypto_err("encode a DNS name SAN"))?;
        p.subject_alt_names.push(SanType::DnsName(ia5));
    }
    Ok(p)
}
