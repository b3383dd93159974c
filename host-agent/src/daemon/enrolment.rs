//! `Enrolment.Enrol`: a node trades its single-use token and a CSR for a
//! node certificate.
//!
//! Order matters: the attempt must pass the rate limit ([`super::ratelimit`])
//! before any work is done; then the token store is asked whose token this
//! is (by id, to attribute a refusal, below); the node must be in the
//! topology; then the token is consumed (on disk before anything else
//! happens, so a replay racing this request loses), then the CSR is signed
//! with the identity the host fixed in advance: CN = node name, IP SANs =
//! the node's topology addresses, Organization = `hostctl:node`. Nothing in
//! the request but the CSR's public key ends up in the certificate. A CSR
//! that fails to verify after the token was spent costs the token: the
//! node needs a new one (the refusal says so), which keeps a token from
//! being probed repeatedly. Raising the node's revocation floor comes
//! between spending the token and signing, so a new enrolment retires
//! every certificate the node held before ([`super::nodecerts`]).
//!
//! What the peer learns: every refusal of the node name or the token —
//! unknown node, unknown token, wrong secret, expired, already used,
//! issued for another node — is the same `PERMISSION_DENIED` with the same
//! message ([`REFUSED`]), so an unauthenticated peer cannot enumerate node
//! names or probe tokens. The precise reason goes to the host's log (with
//! the peer's address) and, only when the presented token's id is one the
//! host issued for that very node, into the daemon's per-node refusal
//! record that `status` shows and `up`'s enrol step stops waiting on
//! (with the token's id, so `status` can say whether it is the node's
//! newest token, the one its machine holds: `up` then stops at once even
//! if the refusal is older than the run — an agent refused its spent token
//! stops and does not retry).
//! Token ids are random and appear only in the node's user-data and the
//! host's 0600 token store, so noise naming a node cannot end `up`'s wait.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use certs::{NodeIdentitySpec, ROLE_NODE, TokenError};
use proto::v1::enrolment_server::{Enrolment, EnrolmentServer};
use proto::v1::{EnrolRequest, EnrolResponse, NodeMeta};
use tonic::{Request, Response, Status};

use super::config::NodeEntry;
use super::ratelimit::{Decision, EnrolLimiter};
use super::state::{Refusal, Shared};

/// Largest enrolment request decoded: a CSR is about 0.5 KiB, a token 46
/// bytes, a node name at most 63. Far below tonic's 4 MiB default, which
/// let an unauthenticated peer send 4 MB node names — each refusal then
/// wrote an 8 MB log line, and a few a second wiped the log's history
/// and took 16 MiB of the home (found by the soak test).
pub const MAX_ENROL_REQUEST_BYTES: usize = 16 * 1024;

/// Node names longer than this are cut in log lines.
const LOGGED_NAME_CHARS: usize = 64;

/// The Enrolment service with its message size limit.
pub fn server(shared: Arc<Shared>) -> EnrolmentServer<EnrolmentService> {
    EnrolmentServer::new(EnrolmentService::new(shared))
        .max_decoding_message_size(MAX_ENROL_REQUEST_BYTES)
}

/// A peer-chosen node name as log lines show it: cut to
/// [`LOGGED_NAME_CHARS`] characters, with its length.
fn loggable(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(LOGGED_NAME_CHARS) {
        None => name.into(),
        Some((cut, _)) => format!("{}…({} bytes)", &name[..cut], name.len()).into(),
    }
}

/// What a peer is told for every refusal of its node name or token.
pub const REFUSED: &str =
    "enrolment refused: this host has no valid enrolment token for that node name and token";

/// What a rate-limited peer is told.
pub const RATE_LIMITED: &str = "too many enrolment attempts from this address; retry later";

/// Why the host refused an enrolment (its own view; see [`Refused::status`]
/// for what the peer is told).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("node {node:?} is not in the topology")]
    NotInTopology { node: String },
    /// Unknown, wrong secret, expired, used, or issued for another node.
    #[error(transparent)]
    Token(TokenError),
    /// The token was good and is now spent; the CSR was not.
    #[error("{0}; the enrolment token is spent, issue a new one")]
    Csr(String),
    /// The host's own failure, not the node's.
    #[error("the enrolment token store is unavailable: {0}")]
    Store(String),
}

impl Refused {
    /// The status the peer gets: one answer for every name/token refusal.
    pub fn status(&self) -> Status {
        match self {
            Refused::NotInTopology { .. } | Refused::Token(_) => Status::permission_denied(REFUSED),
            Refused::Csr(_) => Status::invalid_argument(format!("enrolment refused: {self}")),
            Refused::Store(_) => Status::internal("the enrolment token store is unavailable"),
        }
    }

    /// The metrics' `reason` label ([`super::metrics::refusal`]).
    fn metric_reason(&self) -> &'static str {
        use super::metrics::refusal;
        match self {
            Refused::NotInTopology { .. } => refusal::NOT_IN_TOPOLOGY,
            Refused::Token(_) => refusal::TOKEN,
            Refused::Csr(_) => refusal::CSR,
            Refused::Store(_) => refusal::STORE,
        }
    }

    /// Whether this is a refusal of the node (one a retry with the same
    /// token cannot overcome), as opposed to the host's own failure.
    fn is_the_nodes(&self) -> bool {
        !matches!(self, Refused::Store(_))
    }
}

fn from_token_error(e: TokenError) -> Refused {
    match e {
        TokenError::Store(inner) => Refused::Store(inner.to_string()),
        other => Refused::Token(other),
    }
}

/// The Enrolment service of one daemon.
pub struct EnrolmentService {
    shared: Arc<Shared>,
    limiter: EnrolLimiter,
}

impl EnrolmentService {
    pub fn new(shared: Arc<Shared>) -> Self {
        let limiter = EnrolLimiter::new(shared.config.enrol_limits, Instant::now());
        EnrolmentService { shared, limiter }
    }

    /// Applies the rate limit to an attempt from `peer`; logs the first
    /// refusal of a run and a summary when the peer is allowed again.
    fn admit(&self, peer: &PeerAddr) -> Result<(), Status> {
        match self.limiter.check(peer.0.map(|p| p.ip()), Instant::now()) {
            Decision::Allowed { limited_before: 0 } => Ok(()),
            Decision::Allowed { limited_before } => {
                tracing::info!(%peer, refused = limited_before, "enrolment attempts were rate-limited");
                Ok(())
            }
            Decision::Limited { scope, first } => {
                self.shared
                    .metrics
                    .enrolments_refused
                    .inc(super::metrics::refusal::RATE_LIMITED);
                if first {
                    tracing::warn!(
                        %peer,
                        ?scope,
                        "enrolment attempts rate-limited; further refusals are counted, not logged"
                    );
                } else {
                    tracing::debug!(%peer, ?scope, "enrolment attempt rate-limited");
                }
                Err(Status::resource_exhausted(RATE_LIMITED))
            }
        }
    }
}

/// A peer address for log lines (`unknown` when the transport has none).
struct PeerAddr(Option<SocketAddr>);

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("unknown"),
        }
    }
}

/// Who a refused token belongs to, as far as the token store knows.
#[derive(Debug, Default)]
struct Holder {
    /// The node the token's id was issued for.
    node: Option<String>,
    /// The token's id, when the store issued it.
    id: Option<String>,
}

/// One attempt, off the async runtime (token-store file I/O, signing).
/// Returns whose token it was, with the outcome.
fn attempt(
    shared: &Shared,
    node: &str,
    entry: Option<NodeEntry>,
    token: &str,
    csr: &str,
) -> (Holder, Result<String, Refused>) {
    // Asked before the topology check, so that an unknown node costs the
    // same work as a known one.
    let holder = match shared.tokens.issued_for(token) {
        Ok(node) => Holder {
            id: node
                .as_ref()
                .and_then(|_| certs::TokenStore::id_of(token))
                .map(str::to_owned),
            node,
        },
        Err(e) => return (Holder::default(), Err(from_token_error(e))),
    };
    let Some(entry) = entry else {
        let node = loggable(node).into_owned();
        return (holder, Err(Refused::NotInTopology { node }));
    };
    if let Err(e) = shared.tokens.consume(token, node) {
        return (holder, Err(from_token_error(e)));
    }
    // A new token revokes every earlier certificate of the node (issue 13,
    // item 9): the floor is raised before the certificate exists. The
    // system clock, not the daemon's: certificates are dated by it.
    let dated = match shared
        .node_certs
        .enrolling(node, std::time::SystemTime::now())
    {
        Ok(dated) => dated,
        Err(e) => return (holder, Err(Refused::Store(e.to_string()))),
    };
    let spec = NodeIdentitySpec {
        name: node.to_owned(),
        addresses: entry.addresses,
        roles: vec![ROLE_NODE.to_owned()],
        validity_days: shared.config.cert_validity_days,
    };
    let signed = shared
        .pki
        .sign_node_csr_dated(csr, &spec, Some(dated))
        .map_err(|e| Refused::Csr(e.to_string()));
    (holder, signed)
}

#[tonic::async_trait]
impl Enrolment for EnrolmentService {
    async fn enrol(&self, req: Request<EnrolRequest>) -> Result<Response<EnrolResponse>, Status> {
        let peer = PeerAddr(req.remote_addr());
        self.admit(&peer)?;
        let r = req.into_inner();
        let entry = self.shared.config.nodes.get(&r.node).cloned();
        let cluster = entry
            .as_ref()
            .map(|e| e.cluster.clone())
            .unwrap_or_default();
        let shared = self.shared.clone();
        let node = r.node.clone();
        let (holder, outcome) = tokio::task::spawn_blocking(move || {
            attempt(&shared, &node, entry, &r.token, &r.csr_pem)
        })
        .await
        .map_err(|e| Status::internal(format!("enrolment task failed: {e}")))?;
        let node = r.node;
        let logged = loggable(&node);
        let signed = match outcome {
            Ok(signed) => signed,
            Err(refused) => {
                self.shared
                    .metrics
                    .enrolments_refused
                    .inc(refused.metric_reason());
                let own_token = holder.node.as_deref() == Some(node.as_str());
                match &refused {
                    Refused::Store(_) => {
                        tracing::error!(node = %logged, %peer, "enrolment failed: {refused}");
                    }
                    _ => tracing::warn!(
                        node = %logged,
                        %peer,
                        token_of = holder.node.as_deref().unwrap_or("-"),
                        "enrolment refused: {refused}"
                    ),
                }
                if own_token && refused.is_the_nodes() {
                    self.shared.refusals.record(
                        &node,
                        Refusal {
                            at: self.shared.config.clock.now(),
                            reason: format!("enrolment refused: {refused}"),
                            peer: peer.0,
                            token_id: holder.id,
                        },
                    );
                    self.shared.changes.notify(&node);
                }
                return Err(refused.status());
            }
        };
        tracing::info!(node, %peer, "node enrolled");
        self.shared.metrics.enrolments_accepted.inc(&node);
        Ok(Response::new(EnrolResponse {
            meta: Some(NodeMeta { node, cluster }),
            certificate_pem: signed,
            ca_pem: self.shared.pki.agent_ca_pem().to_owned(),
            host_endpoint: self.shared.host_endpoint.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_peer_chosen_name_is_cut_in_logs() {
        assert_eq!(loggable("app1-cp"), "app1-cp");
        let long = "n".repeat(4 << 20);
        let shown = loggable(&long);
        assert!(shown.len() < 100, "{} bytes logged", shown.len());
        assert!(shown.ends_with(&format!("…({} bytes)", 4 << 20)), "{shown}");
        // Cut on a character boundary.
        let wide = "é".repeat(100);
        assert!(loggable(&wide).starts_with(&"é".repeat(64)));
    }
}
