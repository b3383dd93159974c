//! Issuing leaf certificates (host, admin, node, kubeconfig client) — one
//! code path for all of them.
//!
//! Roles go in the subject as one Organization attribute per role, as Talos
//! and Kubernetes (one O per group) do. rcgen's `DistinguishedName` is a map
//! and holds at most one O, so the subject is written here: rcgen builds and
//! signs the certificate with a CN-only subject, then the subject Name inside
//! the TBSCertificate is replaced by `O=role1, O=role2, …, CN=name` (each its
//! own RDN, UTF8String, as rcgen writes them) and the TBSCertificate is signed
//! again with the CA key. Every other byte is rcgen's. OpenSSL verifies the
//! result in the tests.

use rcgen::{PublicKeyData, SigningKey};

use crate::error::{PkiError, crypto_err};
use crate::inspect;
use crate::material::KeyedCert;
use crate::params::{self, LeafSpec};

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
const TAG_UTF8: u8 = 0x0c;
const TAG_BIT_STRING: u8 = 0x03;
/// id-at-organizationName (2.5.4.10), DER content.
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
/// id-at-commonName (2.5.4.3), DER content.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// A DER TLV with definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Length of the TLV header at the start of `der` and of its content.
fn header(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > std::mem::size_of::<usize>() {
        return None;
    }
    let len = der
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((2 + n, len))
}

/// `O=…` for each role, then `CN=…`, each attribute in its own RDN.
fn subject_der(common_name: &str, organizations: &[String]) -> Vec<u8> {
    let rdn = |oid: &[u8], value: &str| {
        let atv = [tlv(TAG_OID, oid), tlv(TAG_UTF8, value.as_bytes())].concat();
        tlv(TAG_SET, &tlv(TAG_SEQUENCE, &atv))
    };
    let mut rdns: Vec<u8> = organizations.iter().flat_map(|o| rdn(OID_O, o)).collect();
    rdns.extend(rdn(OID_CN, common_name));
    tlv(TAG_SEQUENCE, &rdns)
}

fn malformed() -> PkiError {
    PkiError::BadCertificate {
        reason: "internal: unexpected certificate encoding while writing the subject".into(),
    }
}

/// Issues a leaf for `subject_key` as described by `spec`, signed by `ca`.
/// Returns (PEM, DER).
pub(crate) fn issue(
    spec: &LeafSpec<'_>,
    subject_key: &impl PublicKeyData,
    ca: &KeyedCert,
) -> Result<(String, Vec<u8>), PkiError> {
    let draft = params::leaf_params(spec)?
        .signed_by(subject_key, &ca.issuer()?)
        .map_err(crypto_err("sign a certificate"))?;
    let der: &[u8] = draft.der();
    let parsed = inspect::parse_der(der)?;
    let tbs: &[u8] = parsed.tbs_certificate.as_ref();
    let subject = parsed.tbs_certificate.subject.as_raw();

    // Locate the subject inside the TBSCertificate and the TBS inside the
    // certificate; both are sub-slices of `der`.
    let offset_in = |outer: &[u8], inner: &[u8]| {
        let start = inner.as_ptr().addr().checked_sub(outer.as_ptr().addr())?;
        (start + inner.len() <= outer.len()).then_some(start)
    };
    let subj_at = offset_in(tbs, subject).ok_or_else(malformed)?;
    let tbs_at = offset_in(der, tbs).ok_or_else(malformed)?;
    let (tbs_hdr, _) = header(tbs).ok_or_else(malformed)?;
    if subj_at < tbs_hdr {
        return Err(malformed());
    }

    let new_tbs_content = [
        &tbs[tbs_hdr..subj_at],
        &subject_der(spec.common_name, spec.organizations),
        &tbs[subj_at + subject.len()..],
    ]
    .concat();
    let new_tbs = tlv(TAG_SEQUENCE, &new_tbs_content);

    // The signatureAlgorithm TLV follows the TBS unchanged (same CA key).
    let after_tbs = der.get(tbs_at + tbs.len()..).ok_or_else(malformed)?;
    let (alg_hdr, alg_len) = header(after_tbs).ok_or_else(malformed)?;
    let sig_alg = after_tbs.get(..alg_hdr + alg_len).ok_or_else(malformed)?;

    let signature = ca
        .key
        .sign(&new_tbs)
        .map_err(crypto_err("sign a certificate"))?;
    let bit_string = tlv(TAG_BIT_STRING, &[&[0u8][..], &signature].concat());
    let cert_der = tlv(
        TAG_SEQUENCE,
        &[new_tbs.as_slice(), sig_alg, &bit_string].concat(),
    );
    let cert_pem = pem::encode_config(
        &pem::Pem::new("CERTIFICATE", cert_der.clone()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    Ok((cert_pem, cert_der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536] {
            let content = vec![0u8; len];
            let encoded = tlv(TAG_SEQUENCE, &content);
            assert_eq!(
                header(&encoded),
                Some((encoded.len() - len, len)),
                "len {len}"
            );
        }
    }

    #[test]
    fn subject_has_one_rdn_per_role() -> Result<(), Box<dyn std::error::Error>> {
        let der = subject_der("n1", &["a:b".to_owned(), "c".to_owned()]);
        let (rest, name) =
            <x509_parser::x509::X509Name as x509_parser::prelude::FromDer<_>>::from_der(&der)?;
        assert!(rest.is_empty());
        assert_eq!(name.to_string(), "O=a:b, O=c, CN=n1");
        Ok(())
    }
}
