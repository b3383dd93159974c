//! Enrolment: turning a single-use token into a node certificate.
//!
//! The node starts with only the pinned CA, the host address, its name and
//! a token. Its private key is made here and never leaves the machine; the
//! host only sees a CSR. The key is stored (0600) before the request so a
//! crash after the host consumed the token cannot lose the key the issued
//! certificate belongs to. A refusal is final (tokens are single-use, so
//! retrying cannot help); transport failures are retried with backoff
//! because the host may simply not be up yet.
//!
//! Once the certificate is stored, the token's SHA-256 is recorded (never
//! the token). A later start whose stored certificate is unusable (expired,
//! say) and whose config still carries that same token sends it once more
//! — so the host records the refusal, and `hostctl status` and `up` say at
//! once that the node needs a new token — and then stops with
//! [`EnrolError::TokenSpent`], whose exit status (3) the systemd unit does
//! not restart: the replay is not sent forever.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use proto::v1::enrolment_client::EnrolmentClient;
use proto::v1::{EnrolRequest, EnrolResponse};
use tonic::transport::Endpoint;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::config::{Config, Secret};
use crate::identity::{IdentityError, NodeIdentity, host_tls};
use crate::state::{StateDir, StateError, StoredPair};
use telemetry::error_chain::chain;

/// Why the node could not obtain an identity.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// No usable certificate is stored and the config carries no token.
    #[error(
        "no valid certificate in {} and no enrolmentToken in the config; issue a new token for this node on the host",
        state_dir.display()
    )]
    NoToken { state_dir: PathBuf },
    /// The stored certificate cannot be used any more and the token in the
    /// config is the one this agent already spent: only a new token helps.
    #[error(
        "the node certificate in {} is unusable ({reason}), and the enrolmentToken in the config was already spent by this agent's enrolment (tokens are single-use, and the host refused it again); this machine needs a new enrolment token: remove it and recreate it with `hostctl up`, or put a new enrolmentToken in the agent config and restart the agent",
        state_dir.display()
    )]
    TokenSpent { state_dir: PathBuf, reason: String },
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

impl EnrolError {
    /// Whether only a new enrolment token can get this agent going again
    /// (restarting it with the same configuration cannot).
    pub fn needs_new_token(&self) -> bool {
        matches!(
            self,
            EnrolError::NoToken { .. } | EnrolError::TokenSpent { .. } | EnrolError::Refused { .. }
        )
    }
}

/// Returns a usable identity: the stored one if the host would still
/// accept it at `now`, otherwise a fresh one obtained with `token` —
/// unless `token` is the one this agent already spent.
pub async fn ensure_identity(
    config: &Config,
    state: &StateDir,
    token: Option<&Secret>,
    now: SystemTime,
) -> Result<NodeIdentity, EnrolError> {
    let unusable = match stored_identity(config, state, now)? {
        Ok(id) => {
            info!(
                cert = %state.cert_path().display(),
                serial = %id.serial,
                "using the stored node certificate"
            );
            return Ok(id);
        }
        Err(reason) => reason,
    };
    let state_dir = state.dir().to_path_buf();
    let token = token.ok_or_else(|| EnrolError::NoToken {
        state_dir: state_dir.clone(),
    })?;
    let digest = token_digest(token);
    let spent = state.token_digest()?.as_deref() == Some(digest.as_str());
    let (key_pem, csr_pem) = key_and_csr(&config.node)?;
    state.write_key(&key_pem)?;
    let response = match enrol_with_retry(config, token, &csr_pem).await {
        Err(EnrolError::Refused { .. }) if spent => {
            return Err(EnrolError::TokenSpent {
                state_dir,
                reason: unusable.unwrap_or_else(|| "no certificate is stored".into()),
            });
        }
        other => other?,
    };
    if !response.ca_pem.is_empty() && !same_certificates(&response.ca_pem, &config.ca_pem) {
        return Err(EnrolError::CaMismatch);
    }
    let id = NodeIdentity::check_at(
        &response.certificate_pem,
        &key_pem,
        &config.ca_pem,
        &config.node,
        now,
    )
    .map_err(EnrolError::BadIssued)?;
    state.write_cert(&response.certificate_pem)?;
    state.write_token_digest(&digest)?;
    info!(cert = %state.cert_path().display(), serial = %id.serial, "enrolled; certificate stored");
    Ok(id)
}

/// The stored identity if one checks at `now` (the directory is settled on
/// it: an interrupted renewal is completed or discarded); otherwise why the
/// stored pair is unusable (`None` when nothing is stored).
fn stored_identity(
    config: &Config,
    state: &StateDir,
    now: SystemTime,
) -> Result<Result<NodeIdentity, Option<String>>, StateError> {
    let mut reason = None;
    for pair in state.candidates()? {
        let StoredPair {
            key_pem, cert_pem, ..
        } = &pair;
        match NodeIdentity::check_at(cert_pem, key_pem, &config.ca_pem, &config.node, now) {
            Ok(id) => {
                if pair.staged {
                    info!("completing a certificate renewal the agent's last exit interrupted");
                }
                state.settle(&pair)?;
                return Ok(Ok(id));
            }
            Err(e) => {
                warn!(error = %e, staged = pair.staged, "stored certificate is unusable");
                // The installed pair's reason is the one people need.
                reason.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok(Err(reason))
}

/// What is recorded of a spent token: its SHA-256, hex.
fn token_digest(token: &Secret) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.expose().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
pub(crate) fn key_and_csr(node: &str) -> Result<(String, String), EnrolError> {
    certs::generate_node_key_and_csr(node).map_err(|e| EnrolError::KeyGen(e.to_string()))
}

/// Whether two PEM documents hold the same certificates (ignoring layout).
pub(crate) fn same_certificates(a: &str, b: &str) -> bool {
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
