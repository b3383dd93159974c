//! TEST HARNESS — the stand-in host's services and what they record: the
//! `Enrolment` and `Host` implementations behind [`super::HarnessHost`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certs::Pki;
use proto::v1::enrolment_server::Enrolment;
use proto::v1::host_server::Host;
use proto::v1::{
    CertificateRenewalRequest, CertificateRenewalResponse, EnrolRequest, EnrolResponse,
    HealthReport, NodeMeta, ReportAck,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{TestResult, node_spec};

/// What the harness host has seen.
#[derive(Default)]
pub struct Seen {
    /// Every report received, duplicates included, in arrival order.
    pub raw: Vec<HealthReport>,
    /// Reports stored (first copy of each (instance, seq)).
    pub stored: Vec<HealthReport>,
    keys: HashSet<(String, u64)>,
    /// Report streams refused because the report named another node.
    pub refused_impersonation: usize,
    /// The client certificate of each Report stream, in the order the
    /// streams were opened.
    pub report_certs: Vec<SeenCert>,
    /// `Enrol` calls received (accepted or not).
    pub enrol_calls: usize,
    /// `RenewCertificate` calls received (accepted or not).
    pub renew_calls: usize,
    /// When set, `RenewCertificate` answers with this instead of signing.
    pub refuse_renewal: Option<(tonic::Code, String)>,
    /// `RenewCertificate` answers only once this many reports are stored
    /// (at most 15 s later), so a test sees reports before and after.
    pub hold_renewal_until_stored: usize,
    /// For each entry of `stored`, the serial of the certificate of the
    /// stream it came on.
    pub stored_via: Vec<String>,
}

/// A client certificate the harness host saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCert {
    /// Serial as x509-parser prints it (`NodeIdentity::serial`'s format).
    pub serial: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

impl SeenCert {
    /// The certificate in `pem` (e.g. the agent's `cert.pem`).
    pub fn of_pem(pem: &str) -> TestResult<SeenCert> {
        Self::of_der(&certs::cert_der_from_pem(pem)?)
    }

    /// The certificate in `der`.
    pub fn of_der(der: &[u8]) -> TestResult<SeenCert> {
        let (_, x509) = x509_parser::parse_x509_certificate(der)?;
        Ok(SeenCert {
            serial: x509.raw_serial_as_string(),
            not_after: x509.validity().not_after.timestamp(),
        })
    }
}

pub(crate) struct EnrolSvc {
    pub(crate) pki: Arc<Pki>,
    pub(crate) host_endpoint: String,
    pub(crate) seen: Arc<Mutex<Seen>>,
}

#[tonic::async_trait]
impl Enrolment for EnrolSvc {
    async fn enrol(&self, req: Request<EnrolRequest>) -> Result<Response<EnrolResponse>, Status> {
        if let Ok(mut s) = self.seen.lock() {
            s.enrol_calls += 1;
        }
        let r = req.into_inner();
        self.pki
            .token_store()
            .consume(&r.token, &r.node)
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        let cert = self
            .pki
            .sign_node_csr(&r.csr_pem, &node_spec(&r.node))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(EnrolResponse {
            meta: Some(NodeMeta {
                node: r.node,
                cluster: String::new(),
            }),
            certificate_pem: cert,
            ca_pem: self.pki.agent_ca_pem().to_owned(),
            host_endpoint: self.host_endpoint.clone(),
        }))
    }
}

pub(crate) struct HostSvc {
    pub(crate) seen: Arc<Mutex<Seen>>,
    pub(crate) pki: Arc<Pki>,
}

fn peer_cn<T>(req: &Request<T>) -> Option<String> {
    let certs = req.peer_certs()?;
    certs::common_name_of(certs.first()?.as_ref()).ok()?
}

#[tonic::async_trait]
impl Host for HostSvc {
    type ReportStream = ReceiverStream<Result<ReportAck, Status>>;

    async fn report(
        &self,
        req: Request<Streaming<HealthReport>>,
    ) -> Result<Response<Self::ReportStream>, Status> {
        let cn = peer_cn(&req).ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let leaf = req
            .peer_certs()
            .and_then(|c| c.first().map(|d| SeenCert::of_der(d.as_ref())))
            .and_then(Result::ok);
        let serial = leaf.as_ref().map(|c| c.serial.clone()).unwrap_or_default();
        if let (Ok(mut s), Some(cert)) = (self.seen.lock(), leaf) {
            s.report_certs.push(cert);
        }
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let seen = self.seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(report)) = inbound.message().await {
                if report.node != cn {
                    if let Ok(mut s) = seen.lock() {
                        s.refused_impersonation += 1;
                    }
                    let _ = tx
                        .send(Err(Status::permission_denied("report names another node")))
                        .await;
                    return;
                }
                let ack = ReportAck {
                    agent_instance: report.agent_instance.clone(),
                    seq: report.seq,
                };
                if let Ok(mut s) = seen.lock() {
                    s.raw.push(report.clone());
                    if s.keys.insert((report.agent_instance.clone(), report.seq)) {
                        s.stored.push(report);
                        s.stored_via.push(serial.clone());
                    }
                }
                if tx.send(Ok(ack)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    /// Signs the CSR for the calling certificate's node, as enrolment does
    /// (no floor, no revocation: the real host's business).
    async fn renew_certificate(
        &self,
        req: Request<CertificateRenewalRequest>,
    ) -> Result<Response<CertificateRenewalResponse>, Status> {
        let cn = peer_cn(&req).ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let (refusal, hold) = {
            let mut s = self.seen.lock().map_err(|_| Status::internal("poisoned"))?;
            s.renew_calls += 1;
            (s.refuse_renewal.clone(), s.hold_renewal_until_stored)
        };
        // 15 s: within the agent's 20 s call deadline, so a held call is
        // still answered rather than retried.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::time::Instant::now() < deadline
            && self.seen.lock().map(|s| s.stored.len()).unwrap_or(hold) < hold
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some((code, message)) = refusal {
            return Err(Status::new(code, message));
        }
        let cert = self
            .pki
            .sign_node_csr(&req.into_inner().csr_pem, &node_spec(&cn))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(CertificateRenewalResponse {
            certificate_pem: cert,
            ca_pem: self.pki.agent_ca_pem().to_owned(),
        }))
    }
}
