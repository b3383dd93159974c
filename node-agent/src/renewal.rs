//! Renewal of the node's own certificate, before it expires.
//!
//! A node certificate lives a year; without renewal an agent would need a
//! new enrolment token every year. Renewal trades a CSR for a new
//! certificate at the host's `Host.RenewCertificate`, authenticated by the
//! current certificate, so no token is involved:
//!
//! 1. a new key and CSR are made here (the key never leaves the machine);
//! 2. the host is called with the *current* identity as client certificate;
//! 3. the answer is checked as enrolment's is — against the pinned CA, the
//!    new key and this node's name, and the returned CA must be the pin;
//! 4. the pair is stored durably and atomically ([`StateDir::write_pair`]:
//!    a crash leaves the old or the new complete pair);
//! 5. only then is it published to the [`IdentityCell`], from which every
//!    new connection takes it (report stream, snapshot uploads, the Node
//!    service's TLS).
//!
//! Any failure before step 4 leaves the old identity and files untouched;
//! the automatic schedule retries with capped backoff. Automatic renewals
//! and the `Node.RenewCertificate` RPC go through the same path, one at a
//! time. Time comes from an injectable [`Clock`], so tests move the date
//! instead of waiting for it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use certs::Clock;
use proto::v1::host_client::HostClient;
use proto::v1::{CertificateRenewalRequest, CertificateRenewalResponse, ErrorCode};
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::enrol::same_certificates;
use crate::host_link::HostLink;
use crate::identity::{IdentityError, NodeIdentity};
use crate::state::{StateDir, StateError};
use telemetry::error_chain::chain;

/// A certificate is renewed once this fraction of its lifetime has passed
/// (numerator, denominator). Two thirds, as kubelet's client-certificate
/// rotation aims for (70–90 %) but earlier: the third that is left — four
/// months for a year's certificate — gives a host that is down, or an
/// administrator who must act, ample time before the node locks itself out.
pub const RENEW_AFTER_FRACTION: (u32, u32) = (2, 3);

/// The schedule looks again at least this often, even if renewal is far
/// off: the clock may jump (a VM resumed, NTP correcting a wrong date),
/// and tokio's timers follow the monotonic clock, not the date.
pub const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Automatic renewals at least this far apart. A node whose clock runs far
/// ahead of the host's gets certificates that are already "due" by its own
/// clock; without this it would renew in a tight loop.
pub const MIN_AUTOMATIC_SPACING: Duration = Duration::from_secs(3600);

/// Retries of a failed automatic renewal: from 1 s up to 5 min, jittered.
/// There is a third of the lifetime to succeed in, so there is no hurry,
/// but a host that comes back should not wait long.
const RETRY_BASE: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(300);

/// Deadline of the host call (connecting has its own 5 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a renewal failed. In every case the old identity stays in use and
/// its files are untouched.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// The host could not be reached or the TLS handshake failed.
    #[error("cannot reach the host to renew the node certificate: {0}")]
    Unreachable(String),
    /// The host answered with an error.
    #[error("the host refused to renew the node certificate ({code:?}): {message}")]
    Refused { code: tonic::Code, message: String },
    /// The host's CA is not the pinned one.
    #[error("the host answered the renewal with a CA that differs from the pinned caPem")]
    CaMismatch,
    /// The host issued a certificate this node cannot use.
    #[error("the host issued an unusable certificate: {0}")]
    BadIssued(#[source] IdentityError),
    /// The new certificate would expire before the current one.
    #[error("the host issued a certificate that expires before the current one")]
    NotNewer,
    /// The key or CSR could not be made.
    #[error("could not generate the new node key: {0}")]
    KeyGen(String),
    /// The new pair could not be stored.
    #[error("storing the renewed certificate: {0}")]
    State(#[from] StateError),
}

impl RenewError {
    /// Whether the host refused the current certificate itself (revoked or
    /// expired), which [`HostLink`] has already said once for the episode.
    pub fn is_certificate_refusal(&self) -> bool {
        match self {
            RenewError::Refused { code, message } => {
                crate::host_link::is_certificate_refusal(Some(*code), message)
            }
            RenewError::Unreachable(text) => crate::host_link::is_certificate_refusal(None, text),
            _ => false,
        }
    }

    /// The API error code for `RenewNowResponse.error`.
    pub fn code(&self) -> ErrorCode {
        match self {
            RenewError::Unreachable(_) => ErrorCode::Unavailable,
            RenewError::Refused { code, .. } => match code {
                tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
                    ErrorCode::PermissionDenied
                }
                tonic::Code::InvalidArgument => ErrorCode::InvalidArgument,
                tonic::Code::Unimplemented | tonic::Code::FailedPrecondition => {
                    ErrorCode::FailedPrecondition
                }
                tonic::Code::DeadlineExceeded => ErrorCode::Timeout,
                _ => ErrorCode::Unavailable,
            },
            RenewError::CaMismatch | RenewError::BadIssued(_) | RenewError::NotNewer => {
                ErrorCode::FailedPrecondition
            }
            RenewError::KeyGen(_) | RenewError::State(_) => ErrorCode::Internal,
        }
    }
}

/// When `identity` is due for renewal: its notBefore plus
/// [`RENEW_AFTER_FRACTION`] of its lifetime.
pub fn due_at(identity: &NodeIdentity) -> SystemTime {
    let lifetime = identity
        .not_after
        .duration_since(identity.not_before)
        .unwrap_or_default();
    let (num, den) = RENEW_AFTER_FRACTION;
    identity.not_before + lifetime * num / den
}

/// How long to wait before looking again, or `None` if renewal is due at
/// `now`. Never longer than [`MAX_CHECK_INTERVAL`].
pub fn wait_before_renewal(identity: &NodeIdentity, now: SystemTime) -> Option<Duration> {
    match due_at(identity).duration_since(now) {
        Ok(wait) if !wait.is_zero() => Some(wait.min(MAX_CHECK_INTERVAL)),
        _ => None,
    }
}

struct Inner {
    link: HostLink,
    state: StateDir,
    node: String,
    ca_pem: String,
    clock: Arc<dyn Clock>,
    /// Held for a whole renewal: the schedule and the RPC never overlap.
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// Renews the identity in its link's cell; cheap to clone (the schedule
/// and the Node service share one).
#[derive(Clone)]
pub struct Renewer {
    inner: Arc<Inner>,
}

impl Renewer {
    /// Renews `link`'s identity for `node`, checking against `ca_pem`,
    /// storing in `state`, deciding with `clock`.
    pub fn new(
        link: HostLink,
        state: StateDir,
        node: &str,
        ca_pem: &str,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Renewer {
            inner: Arc::new(Inner {
                link,
                state,
                node: node.to_owned(),
                ca_pem: ca_pem.to_owned(),
                clock,
                one_at_a_time: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Renews now, whether or not it is due (`Node.RenewCertificate`);
    /// waits for a renewal already under way, then makes its own.
    pub async fn renew_now(&self) -> Result<Arc<NodeIdentity>, RenewError> {
        let _one = self.inner.one_at_a_time.lock().await;
        self.renew_locked().await
    }

    /// Renews if the current identity is due; `None` if it no longer is
    /// (the RPC renewed it meanwhile).
    async fn renew_if_due(&self) -> Result<Option<Arc<NodeIdentity>>, RenewError> {
        let _one = self.inner.one_at_a_time.lock().await;
        let current = self.inner.link.identity().current();
        if wait_before_renewal(&current, self.inner.clock.now()).is_some() {
            return Ok(None);
        }
        self.renew_locked().await.map(Some)
    }

    async fn renew_locked(&self) -> Result<Arc<NodeIdentity>, RenewError> {
        let inner = &self.inner;
        let current = inner.link.identity().current();
        let (key_pem, csr_pem) = certs::generate_node_key_and_csr(&inner.node)
            .map_err(|e| RenewError::KeyGen(e.to_string()))?;
        let response = self.ask_host(&current, csr_pem).await?;
        if !same_certificates(&response.ca_pem, &inner.ca_pem) {
            return Err(RenewError::CaMismatch);
        }
        let renewed = NodeIdentity::check_at(
            &response.certificate_pem,
            &key_pem,
            &inner.ca_pem,
            &inner.node,
            inner.clock.now(),
        )
        .map_err(RenewError::BadIssued)?;
        if renewed.not_after < current.not_after {
            return Err(RenewError::NotNewer);
        }
        inner
            .state
            .write_pair(&key_pem, &response.certificate_pem)?;
        let published = inner.link.identity().publish(renewed);
        info!(
            serial = %published.serial,
            not_after = ?published.not_after,
            previous = %current.serial,
            "node certificate renewed and stored; new connections use it"
        );
        Ok(published)
    }

    /// One `Host.RenewCertificate` call presenting `current`.
    async fn ask_host(
        &self,
        current: &NodeIdentity,
        csr_pem: String,
    ) -> Result<CertificateRenewalResponse, RenewError> {
        let link = &self.inner.link;
        let unreachable = |e: &(dyn std::error::Error + 'static)| {
            let text = chain(e);
            link.note_failure("certificate renewal", None, &text);
            RenewError::Unreachable(text)
        };
        let channel = link
            .endpoint_for(current)
            .map_err(|e| unreachable(&e))?
            .timeout(CALL_TIMEOUT)
            .connect()
            .await
            .map_err(|e| unreachable(&e))?;
        match HostClient::new(channel)
            .renew_certificate(CertificateRenewalRequest { csr_pem })
            .await
        {
            Ok(r) => {
                link.note_success();
                Ok(r.into_inner())
            }
            Err(s) => {
                link.note_failure("certificate renewal", Some(s.code()), &chain(&s));
                Err(RenewError::Refused {
                    code: s.code(),
                    message: s.message().to_owned(),
                })
            }
        }
    }

    /// The automatic schedule: sleeps until the current identity is due
    /// (re-checking at least hourly, and whenever the identity changes),
    /// renews, retries failures with backoff. Never returns.
    pub async fn run(self) {
        let cell = self.inner.link.identity().clone();
        let mut changes = cell.subscribe();
        let mut retry = Backoff::new(RETRY_BASE, RETRY_CAP);
        loop {
            changes.borrow_and_update();
            let current = cell.current();
            if let Some(wait) = wait_before_renewal(&current, self.inner.clock.now()) {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = changes.changed() => {}
                }
                continue;
            }
            match self.renew_if_due().await {
                Ok(Some(renewed)) => {
                    retry.reset();
                    if wait_before_renewal(&renewed, self.inner.clock.now()).is_none() {
                        warn!(
                            not_before = ?renewed.not_before,
                            not_after = ?renewed.not_after,
                            "the renewed certificate is already due for renewal by this node's \
                             clock: is the clock far ahead of the host's? next automatic renewal \
                             in an hour at the earliest"
                        );
                        tokio::time::sleep(MIN_AUTOMATIC_SPACING).await;
                    }
                }
                Ok(None) => {}
                Err(e) if e.is_certificate_refusal() => {
                    let delay = retry.next_delay().max(RETRY_BASE);
                    tracing::debug!(error = %e, retry_in = ?delay, "renewal refused");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    let delay = retry.next_delay().max(RETRY_BASE);
                    warn!(
                        error = %e,
                        retry_in = ?delay,
                        current_not_after = ?current.not_after,
                        "renewing the node certificate failed; the current one stays in use"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Result<NodeIdentity, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let pki = certs::Pki::open_or_init(
            &dir.path().join("home"),
            &certs::PkiSpec {
                clusters: vec![],
                host_sans: vec!["127.0.0.1".into()],
            },
        )?;
        let (key, csr) = certs::generate_node_key_and_csr("n1")?;
        let spec = certs::NodeIdentitySpec {
            name: "n1".into(),
            addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            roles: vec![certs::ROLE_NODE.into()],
            validity_days: 30,
        };
        let cert = pki.sign_node_csr(&csr, &spec)?;
        Ok(NodeIdentity::check(&cert, &key, pki.agent_ca_pem(), "n1")?)
    }

    #[test]
    fn renewal_is_due_after_two_thirds_of_the_lifetime() -> Result<(), Box<dyn std::error::Error>> {
        let id = identity()?;
        let lifetime = id.not_after.duration_since(id.not_before)?;
        let due = due_at(&id);
        assert_eq!(due.duration_since(id.not_before)?, lifetime * 2 / 3);

        // Long before: wait, but never more than an hour at a time.
        assert_eq!(
            wait_before_renewal(&id, id.not_before),
            Some(MAX_CHECK_INTERVAL)
        );
        let close = due - Duration::from_secs(90);
        assert_eq!(
            wait_before_renewal(&id, close),
            Some(Duration::from_secs(90))
        );
        assert_eq!(wait_before_renewal(&id, due), None);
        assert_eq!(wait_before_renewal(&id, id.not_after), None);
        Ok(())
    }
}
