//! `Host.RenewCertificate`: a node trades a CSR for a fresh certificate,
//! authenticated by the certificate it holds now (issue 13, item 9).
//!
//! The identity is fixed by the host exactly as at enrolment — CN = the
//! caller's certificate CN, IP SANs = its topology addresses, roles
//! `hostctl:node` — so a renewal can never widen what a node is. The new
//! certificate is dated no earlier than the node's revocation floor; the
//! floor itself moves when the node first *uses* the new certificate
//! ([`super::nodecerts`]), so the old one keeps working until the node has
//! switched (an agent that crashed before storing its new certificate is
//! not locked out) and stops working right after.
//!
//! A node may renew at most once per [`MIN_INTERVAL`]: each renewal costs a
//! signature and a file write on the host, and an agent renews about once
//! every eight months, so anything faster is a loop or an attack.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certs::{NodeIdentitySpec, ROLE_NODE};
use proto::v1::{CertificateRenewalRequest, CertificateRenewalResponse};
use tonic::{Request, Response, Status};

use super::authz::HOST_RENEW_CERTIFICATE;
use super::nodecerts;
use super::state::Shared;

/// The shortest time between two renewals of one node.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// When each node last renewed (in memory: a restart forgetting it costs
/// one extra renewal at most).
#[derive(Debug, Default)]
pub struct Renewals {
    last: Mutex<HashMap<String, Instant>>,
}

impl Renewals {
    /// Counts a renewal of `node` at `now`, or says when it may retry.
    fn admit(&self, node: &str, now: Instant) -> Result<(), Duration> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = last.get(node) {
            let since = now.saturating_duration_since(*at);
            if since < MIN_INTERVAL {
                return Err(MIN_INTERVAL - since);
            }
        }
        last.insert(node.to_owned(), now);
        Ok(())
    }
}

/// Serves one renewal.
pub async fn renew(
    shared: &Arc<Shared>,
    req: Request<CertificateRenewalRequest>,
) -> Result<Response<CertificateRenewalResponse>, Status> {
    let caller = nodecerts::authorize(&shared.node_certs, &req, HOST_RENEW_CERTIFICATE)?;
    let node = caller.name;
    let entry = shared.config.nodes.get(&node).cloned().ok_or_else(|| {
        tracing::warn!(node, "renewal refused: the node is not in the topology");
        Status::permission_denied(format!("node {node:?} is not in the topology"))
    })?;
    if let Err(wait) = shared.renewals.admit(&node, Instant::now()) {
        return Err(Status::resource_exhausted(format!(
            "this node renewed its certificate less than {} s ago; retry in {} s",
            MIN_INTERVAL.as_secs(),
            wait.as_secs().max(1)
        )));
    }
    let csr = req.into_inner().csr_pem;
    let spec = NodeIdentitySpec {
        name: node.clone(),
        addresses: entry.addresses,
        roles: vec![ROLE_NODE.to_owned()],
        validity_days: shared.config.cert_validity_days,
    };
    let signer = shared.clone();
    let signed = tokio::task::spawn_blocking(move || {
        let dated = signer.node_certs.not_before_for_new(&spec.name);
        signer.pki.sign_node_csr_dated(&csr, &spec, dated)
    })
    .await
    .map_err(|e| Status::internal(format!("renewal task failed: {e}")))?;
    match signed {
        Ok(certificate_pem) => {
            tracing::info!(node, "node certificate renewed");
            Ok(Response::new(CertificateRenewalResponse {
                certificate_pem,
                ca_pem: shared.pki.agent_ca_pem().to_owned(),
            }))
        }
        Err(certs::PkiError::CsrRefused { reason }) => {
            tracing::warn!(node, "renewal refused: {reason}");
            Err(Status::invalid_argument(format!(
                "renewal refused: {reason}"
            )))
        }
        Err(e) => {
            tracing::error!(node, "renewal failed: {e}");
            Err(Status::internal("the host could not sign the certificate"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_renews_at_most_once_per_interval() {
        let r = Renewals::default();
        let t0 = Instant::now();
        assert!(r.admit("n1", t0).is_ok());
        let wait = r.admit("n1", t0 + Duration::from_secs(3));
        assert_eq!(wait, Err(Duration::from_secs(7)));
        assert!(r.admit("n2", t0).is_ok(), "per node");
        assert!(r.admit("n1", t0 + MIN_INTERVAL).is_ok());
    }
}
