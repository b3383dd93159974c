//! Enrolment: turning a single-use token into a node certificate.
//!
//! The node starts with only the pinned CA, the host address, its name and
//! a token. Its private key is made here and never leaves the machine; the
//! host only sees a CSR. The key is stored (0600) before the request so a
//! crash after the host consumed the token cannot lose the key the issued
//! certificate belongs to. A refusal is final (tokens are single-use, so
//! retrying cannot help); transport failures are retried with backoff
//! because the host may simply not be up yet.

use std::path::PathBuf;
use std::time::Duration;

use proto::v1::enrolment_client::EnrolmentClient;
use proto::v1::{EnrolRequest, EnrolResponse};
use tonic::transport::Endpoint;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::config::{Config, Secret};
use crate::errchain::chain;
use crate::identity::{IdentityError, NodeIdentity, host_tls};
use crate::state::{StateDir, StateError};

/// Why the node could not obtain an identity.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// No usable certificate is stored and the config carries no token.
    #[error(
        "no valid certificate in {} and no enrolmentToken in the config; issue a new token for this node on the host",
        state_dir.display()
    )]
    NoToken { state_dir: PathBuf },
    /// The host refused the token (final: the token cannot be reused).
    #[error("the host refused enrolment ({code:?}): {message}")]
    Refused { code: tonic::Code, message: String },
    /// The host answered with a certificate this node cannot use.
    #[error("the host issued an unusable certificate: {0}")]
    BadIssued(#[source] IdentityError),
    /// The host's CA is not the pinned one.
    #[error("the host's CA differs from the pinned caPem")]
    CaMismatch,
    /// The key or CSR could not be made.
    #[error("could not generate the node key: {0}")]
    KeyGen(String),
    /// The state directory could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
}

/// One enrolment attempt's failure.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// The host answered and said no.
    #[error("refused ({}): {}", .0.code(), .0.message())]
    Refused(tonic::Status),
    /// The host could not be reached or the TLS handshake failed; worth
    /// retrying.
    #[error("{0}")]
    Transient(String),
}

/// Returns a usable identity: the stored one if the host would still
/// accept it, otherwise a fresh one obtained with `token`.
pub async fn ensure_identity(
    config: &Config,
    state: &StateDir,
    token: Option<&Secret>,
) -> Result<NodeIdentity, EnrolError> {
    if let Some((key, cert)) = state.read_pair()? {
        match NodeIdentity::check(&cert, &key, &config.ca_pem, &config.node) {
            Ok(id) => {
                info!(cert = %state.cert_path().display(), "using the stored node certificate");
                return Ok(id);
            }
            Err(e) => warn!(error = %e, "stored certificate is unusable; enrolling again"),
        }
    }
    let token = token.ok_or_else(|| EnrolError::NoToken {
        state_dir: state
            .cert_path()
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
    })?;
    let (key_pem, csr_pem) = key_and_csr(&config.node)?;
    state.write_key(&key_pem)?;
    let response = enrol_with_retry(config, token, &csr_pem).await?;
    if !response.ca_pem.is_empty() && !same_certificates(&response.ca_pem, &config.ca_pem) {
        return Err(EnrolError::CaMismatch);
    }
    let id = NodeIdentity::check(
        &response.certificate_pem,
        &key_pem,
        &config.ca_pem,
        &config.node,
    )
    .map_err(EnrolError::BadIssued)?;
    state.write_cert(&response.certificate_pem)?;
    info!(cert = %state.cert_path().display(), "enrolled; certificate stored");
    Ok(id)
}

async fn enrol_with_retry(
    config: &Config,
    token: &Secret,
    csr_pem: &str,
) -> Result<EnrolResponse, EnrolError> {
    let mut backoff = Backoff::standard();
    loop {
        match enrol_once(config, token, csr_pem).await {
            Ok(r) => return Ok(r),
            Err(AttemptError::Refused(status)) => {
                return Err(EnrolError::Refused {
                    code: status.code(),
                    message: status.message().to_owned(),
                });
            }
            Err(AttemptError::Transient(e)) => {
                let delay = backoff.next_delay();
                warn!(endpoint = %config.host.enrol_endpoint, error = %e, retry_in = ?delay, "enrolment attempt failed");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// One `Enrol` call over server-authenticated TLS (no client certificate).
pub async fn enrol_once(
    config: &Config,
    token: &Secret,
    csr_pem: &str,
) -> Result<EnrolResponse, AttemptError> {
    let transient = |e: &(dyn std::error::Error + 'static)| AttemptError::Transient(chain(e));
    let endpoint = Endpoint::from_shared(format!("https://{}", config.host.enrol_endpoint))
        .map_err(|e| transient(&e))?
        .tls_config(host_tls(config, None))
        .map_err(|e| transient(&e))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20));
    let channel = endpoint.connect().await.map_err(|e| transient(&e))?;
    let request = EnrolRequest {
        node: config.node.clone(),
        token: token.expose().to_owned(),
        csr_pem: csr_pem.to_owned(),
    };
    match EnrolmentClient::new(channel).enrol(request).await {
        Ok(r) => Ok(r.into_inner()),
        Err(s) if is_final(s.code()) => Err(AttemptError::Refused(s)),
        Err(s) => Err(transient(&s)),
    }
}

/// Codes that mean the host looked at the request and said no.
fn is_final(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        PermissionDenied
            | InvalidArgument
            | Unauthenticated
            | FailedPrecondition
            | NotFound
            | Unimplemented
            | AlreadyExists
    )
}

/// Generates the private key and a CSR on this machine (the key never
/// leaves it); the host decides the certificate's subject anyway.
fn key_and_csr(node: &str) -> Result<(String, String), EnrolError> {
    certs::generate_node_key_and_csr(node).map_err(|e| EnrolError::KeyGen(e.to_string()))
}

/// Whether two PEM documents hold the same certificates (ignoring layout).
fn same_certificates(a: &str, b: &str) -> bool {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let ders = |s: &str| -> Vec<Vec<u8>> {
        CertificateDer::pem_slice_iter(s.as_bytes())
            .filter_map(Result::ok)
            .map(|d| d.to_vec())
            .collect()
    };
    let (a, b) = (ders(a), ders(b));
    !a.is_empty() && a == b
}
