//! The lab root (`pki/lab/ca.crt`, `ca.key`): one long-lived CA that stays
//! on the host and is the trust anchor of everything the platform issues
//! (C5). It signs CAs, never leaves: each cluster's phase-1 cert-manager CA
//! ([`LabRoot::issue_intermediate`]) and Vault's PKI intermediate
//! ([`LabRoot::sign_intermediate_csr`]). Because both chain to the same
//! root, the trust bundles clients hold do not change when issuance moves
//! from cert-manager's CA issuer to Vault, and a rebuilt cluster keeps the
//! trust of the old one. Its key is never placed in a cluster: a cluster
//! holds only its own intermediate, so one cluster cannot mint for another.

use std::path::Path;
use std::time::Duration;

use rcgen::{CertificateSigningRequestParams, KeyPair};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::error::{PkiError, crypto_err};
use crate::identity::{Identity, SecretPem};
use crate::kubeadm::Mode;
use crate::material::{self, KeyedCert, PairPaths};
use crate::params;
use crate::store;

/// How long an intermediate below the lab root lasts; it is re-minted
/// whenever the step that places it runs again.
pub const INTERMEDIATE_VALIDITY: Duration = Duration::from_secs(3 * 365 * 86_400);

const LAB_FIX: &str = "restore pki/lab from a backup, or remove it to create a new lab root (every platform certificate and trust bundle must then be re-issued)";

/// The loaded lab root.
pub struct LabRoot {
    ca: KeyedCert,
}

impl LabRoot {
    /// In `Create` mode loads or creates `dir/ca.*`; in `LoadOnly` mode
    /// loads it if present (`None` for a home from before the lab root).
    pub(crate) fn obtain(dir: &Path, mode: Mode) -> Result<Option<LabRoot>, PkiError> {
        let paths = PairPaths::new(dir, "ca", LAB_FIX);
        let ca = match mode {
            Mode::Create => {
                store::ensure_private_dir(dir)?;
                Some(material::load_or_create_self_signed(&paths, || {
                    params::root_params("hostctl lab root CA")
                })?)
            }
            Mode::LoadOnly if !store::exists(dir)? => None,
            Mode::LoadOnly => {
                store::check_private_dir(dir)?;
                material::load_ca(&paths)?
            }
        };
        Ok(ca.map(|ca| LabRoot { ca }))
    }

    /// The root certificate: the trust bundle for everything below it.
    pub fn cert_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    /// A new CA (fresh key) below the root, e.g. a cluster's phase-1
    /// cert-manager issuer, valid [`INTERMEDIATE_VALIDITY`].
    pub fn issue_intermediate(&self, common_name: &str) -> Result<Identity, PkiError> {
        let key = KeyPair::generate().map_err(crypto_err("generate an intermediate CA key"))?;
        let cert = params::intermediate_params(common_name, INTERMEDIATE_VALIDITY)
            .signed_by(&key, &self.ca.issuer()?)
            .map_err(crypto_err("sign an intermediate CA"))?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: SecretPem::new(key.serialize_pem()),
        })
    }

    /// A serving certificate (fresh key) for a service on the host that
    /// clients verify against this root alone, e.g. Harbor's: the nodes'
    /// containerd trusts the root, never a per-service CA.
    pub fn issue_server(
        &self,
        common_name: &str,
        ips: &[std::net::IpAddr],
        dns_names: &[String],
    ) -> Result<Identity, PkiError> {
        let key = KeyPair::generate().map_err(crypto_err("generate a server key"))?;
        let spec = params::LeafSpec {
            common_name,
            organizations: &[],
            ips,
            dns_names,
            server_auth: true,
            client_auth: false,
            validity: params::LEAF_VALIDITY,
            not_before_at_least: None,
        };
        let cert = params::leaf_params(&spec)?
            .signed_by(&key, &self.ca.issuer()?)
            .map_err(crypto_err("sign a server certificate"))?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: SecretPem::new(key.serialize_pem()),
        })
    }

    /// Signs a CA request made elsewhere (Vault's
    /// `pki_int/intermediate/generate/internal`, whose key never leaves
    /// Vault) as an intermediate named `common_name`: the request supplies
    /// only its public key; every other field is the root's decision.
    pub fn sign_intermediate_csr(
        &self,
        csr_pem: &str,
        common_name: &str,
    ) -> Result<String, PkiError> {
        let refused = |reason: String| PkiError::CsrRefused { reason };
        let block = pem::parse(csr_pem).map_err(|e| refused(format!("not PEM: {e}")))?;
        let (_, parsed) = X509CertificationRequest::from_der(block.contents())
            .map_err(|e| refused(format!("not a PKCS#10 request: {e}")))?;
        parsed
            .verify_signature()
            .map_err(|_| refused("the request's signature does not verify".to_owned()))?;
        let mut csr = CertificateSigningRequestParams::from_der(&block.contents().to_vec().into())
            .map_err(|e| refused(format!("not a certificate request: {e}")))?;
        csr.params = params::intermediate_params(common_name, INTERMEDIATE_VALIDITY);
        let cert = csr
            .signed_by(&self.ca.issuer()?)
            .map_err(crypto_err("sign an intermediate CA request"))?;
        Ok(cert.pem())
    }
}
