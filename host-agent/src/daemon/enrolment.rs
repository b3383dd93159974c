//! `Enrolment.Enrol`: a node trades its single-use token and a CSR for a
//! node certificate.
//!
//! Order matters: the node must be in the topology, then the token is
//! consumed (on disk before anything else happens, so a replay racing this
//! request loses), then the CSR is signed with the identity the host fixed
//! in advance: CN = node name, IP SANs = the node's topology addresses,
//! Organization = `hostctl:node`. Nothing in the request but the CSR's
//! public key ends up in the certificate. A CSR that fails to verify after
//! the token was spent costs the token: the node needs a new one (the
//! refusal says so), which keeps a token from being probed repeatedly.

use std::sync::Arc;

use certs::{NodeIdentitySpec, ROLE_NODE, TokenError};
use proto::v1::enrolment_server::Enrolment;
use proto::v1::{EnrolRequest, EnrolResponse, NodeMeta};
use tonic::{Request, Response, Status};

use super::state::{Refusal, Shared};
use std::net::SocketAddr;
use std::time::SystemTime;

/// The Enrolment service of one daemon.
pub struct EnrolmentService {
    shared: Arc<Shared>,
}

impl EnrolmentService {
    pub fn new(shared: Arc<Shared>) -> Self {
        EnrolmentService { shared }
    }
}

fn refused_token(node: &str, e: &TokenError) -> Status {
    match e {
        TokenError::Store(inner) => {
            tracing::error!(node, "enrolment token store failed: {inner}");
            Status::internal("the enrolment token store is unavailable")
        }
        _ => {
            tracing::warn!(node, "enrolment refused: {e}");
            Status::permission_denied(format!("enrolment refused: {e}"))
        }
    }
}

/// Remembers a refusal of a topology node (see [`super::state::Refusals`]);
/// a store failure is the host's problem, not the node's, and is not one.
fn remember(shared: &Shared, node: &str, peer: Option<SocketAddr>, status: &Status) {
    if matches!(
        status.code(),
        tonic::Code::PermissionDenied | tonic::Code::InvalidArgument
    ) {
        shared.refusals.record(
            node,
            Refusal {
                at: SystemTime::now(),
                reason: status.message().to_owned(),
                peer,
            },
        );
    }
}

#[tonic::async_trait]
impl Enrolment for EnrolmentService {
    async fn enrol(&self, req: Request<EnrolRequest>) -> Result<Response<EnrolResponse>, Status> {
        let peer = req.remote_addr();
        let r = req.into_inner();
        let Some(entry) = self.shared.config.nodes.get(&r.node).cloned() else {
            tracing::warn!(
                node = r.node,
                ?peer,
                "enrolment refused: node not in the topology"
            );
            return Err(Status::permission_denied(format!(
                "enrolment refused: node {:?} is not in the topology",
                r.node
            )));
        };
        let shared = self.shared.clone();
        let (node, token, csr) = (r.node, r.token, r.csr_pem);
        let node_for_task = node.clone();
        let signed = tokio::task::spawn_blocking(move || {
            shared
                .tokens
                .consume(&token, &node_for_task)
                .map_err(|e| refused_token(&node_for_task, &e))?;
            let spec = NodeIdentitySpec {
                name: node_for_task.clone(),
                addresses: entry.addresses.clone(),
                roles: vec![ROLE_NODE.to_owned()],
                validity_days: shared.config.cert_validity_days,
            };
            shared.pki.sign_node_csr(&csr, &spec).map_err(|e| {
                tracing::warn!(
                    node = node_for_task,
                    "CSR refused after the token was spent: {e}"
                );
                Status::invalid_argument(format!(
                    "{e}; the enrolment token is spent, issue a new one"
                ))
            })
        })
        .await
        .map_err(|e| Status::internal(format!("enrolment task failed: {e}")))?
        .inspect_err(|status| remember(&self.shared, &node, peer, status))?;
        tracing::info!(node, ?peer, "node enrolled");
        Ok(Response::new(EnrolResponse {
            meta: Some(NodeMeta {
                node,
                cluster: entry.cluster,
            }),
            certificate_pem: signed,
            ca_pem: self.shared.pki.agent_ca_pem().to_owned(),
            host_endpoint: self.shared.host_endpoint.to_string(),
        }))
    }
}
