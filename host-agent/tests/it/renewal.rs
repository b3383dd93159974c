//! Node certificate renewal and revocation against a real daemon over
//! loopback (issue 13, item 9): a node renews over mutual TLS with the
//! certificate it holds and gets the same identity again; its old
//! certificate works until the new one is used and never after; a
//! revocation refuses every certificate the node holds, ends its open
//! report stream, survives a daemon restart, and only a new enrolment
//! brings the node back; `status` shows the certificate in use.

use test_support::host_daemon as support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::v1::host_client::HostClient;
use proto::v1::{CertificateRenewalRequest, ReportAck};
use support::{BoxError, Creds, Home, NODE_A, NODE_A_IP, enrol, host_channel, issue_token, report};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

/// Generous: a loaded machine may take long, a healthy one answers at once.
const DEADLINE: Duration = Duration::from_secs(60);

/// notBefore and notAfter of a PEM certificate.
fn validity(cert_pem: &str) -> Result<(SystemTime, SystemTime), BoxError> {
    let der = certs::cert_der_from_pem(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)?;
    let at = |t: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
    Ok((
        at(cert.validity().not_before.timestamp()),
        at(cert.validity().not_after.timestamp()),
    ))
}

/// One report on a fresh connection with `creds`: its ack, or the refusal.
async fn report_once(
    home: &Home,
    addr: std::net::SocketAddr,
    creds: &Creds,
    seq: u64,
) -> Result<Vec<ReportAck>, tonic::Status> {
    let channel = host_channel(&home.ca_pem(), addr, Some(creds))
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    support::send_reports(channel, vec![report(NODE_A, "renewal-test", seq, 5)]).await
}

/// Renews over mutual TLS with `creds`; returns the new pair.
async fn renew(home: &Home, addr: std::net::SocketAddr, creds: &Creds) -> Result<Creds, BoxError> {
    let (key_pem, csr_pem) = certs::generate_node_key_and_csr(NODE_A)?;
    let channel = host_channel(&home.ca_pem(), addr, Some(creds)).await?;
    let r = HostClient::new(channel)
        .renew_certificate(CertificateRenewalRequest { csr_pem })
        .await?
        .into_inner();
    assert_eq!(r.ca_pem, home.ca_pem(), "the renewal names the agent CA");
    Ok(Creds {
        cert_pem: r.certificate_pem,
        key_pem,
    })
}

/// Enrols NODE_A with a fresh token on `daemon`.
async fn enrol_node_a(home: &Home, daemon: &host_agent::daemon::Daemon) -> Result<Creds, BoxError> {
    let token = issue_token(home, NODE_A).await?;
    Ok(enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &token)
        .await?
        .1)
}

fn assert_revoked(answer: Result<Vec<ReportAck>, tonic::Status>, what: &str) {
    match answer {
        Err(s) => {
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
            assert!(s.message().contains("revoked"), "{what}: {}", s.message());
        }
        Ok(acks) => panic!("{what}: accepted ({acks:?})"),
    }
}

#[tokio::test]
async fn a_renewed_certificate_keeps_the_identity_and_retires_the_old_one_once_used()
-> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let addr = daemon.host_addr();
    let first = enrol_node_a(&home, &daemon).await?;
    assert_eq!(report_once(&home, addr, &first, 1).await?.len(), 1);

    let second = renew(&home, addr, &first).await?;
    let der = certs::cert_der_from_pem(&second.cert_pem)?;
    assert_eq!(certs::common_name_of(&der)?.as_deref(), Some(NODE_A));
    assert_eq!(certs::roles_of(&der)?, vec![certs::ROLE_NODE.to_owned()]);
    let ips: Vec<String> = certs::ip_sans_of(&der)?
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ips, vec![NODE_A_IP.to_owned()], "SANs from the topology");
    let (old_from, _) = validity(&first.cert_pem)?;
    let (new_from, new_until) = validity(&second.cert_pem)?;
    assert!(
        new_from > old_from,
        "the renewed certificate is strictly newer"
    );

    // Until the node uses the new certificate, the old one still works
    // (an agent that crashed before storing the new one is not locked out).
    assert_eq!(report_once(&home, addr, &first, 2).await?.len(), 1);
    assert_eq!(report_once(&home, addr, &second, 3).await?.len(), 1);
    assert_revoked(
        report_once(&home, addr, &first, 4).await,
        "the old certificate after the new one was used",
    );

    // status shows the certificate in use.
    let status = home.control().await?.status().await?;
    let node = status
        .nodes
        .iter()
        .find(|n| n.meta.as_ref().is_some_and(|m| m.node == NODE_A))
        .ok_or("node missing from status")?;
    let shown = node
        .agent_cert_not_after
        .as_ref()
        .and_then(proto::system_time)
        .ok_or("no agent certificate expiry in status")?;
    assert_eq!(shown, new_until);
    assert_eq!(
        node.agent_cert_warning, "",
        "a fresh certificate needs no warning"
    );

    // A second renewal right away is refused politely (rate limit).
    let Err(again) = renew(&home, addr, &second).await else {
        panic!("a second renewal right away was accepted");
    };
    let status = again
        .downcast_ref::<tonic::Status>()
        .ok_or_else(|| format!("not a status: {again}"))?;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_revocation_refuses_the_node_ends_its_stream_and_survives_a_restart()
-> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let addr = daemon.host_addr();
    let creds = enrol_node_a(&home, &daemon).await?;

    // An open report stream: the first report is acknowledged.
    let channel = host_channel(&home.ca_pem(), addr, Some(&creds)).await?;
    let (tx, rx) = mpsc::channel(4);
    tx.send(report(NODE_A, "stream", 1, 5)).await?;
    let mut acks = HostClient::new(channel)
        .report(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let first = tokio::time::timeout(DEADLINE, acks.message()).await??;
    assert_eq!(first.map(|a| a.seq), Some(1));

    let floor = home.control().await?.revoke_node(NODE_A).await?;
    let (issued, _) = validity(&creds.cert_pem)?;
    assert!(floor > issued, "the floor is above the certificate in use");

    // The open stream ends at its next report, unacknowledged.
    tx.send(report(NODE_A, "stream", 2, 5)).await?;
    let ended = tokio::time::timeout(DEADLINE, acks.message()).await?;
    match ended {
        Err(s) => {
            assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
            assert!(s.message().contains("revoked"), "{}", s.message());
        }
        Ok(other) => panic!("the stream went on after the revocation: {other:?}"),
    }
    assert_revoked(report_once(&home, addr, &creds, 3).await, "a new stream");
    let status = home.control().await?.status().await?;
    let warning = status
        .nodes
        .iter()
        .find(|n| n.meta.as_ref().is_some_and(|m| m.node == NODE_A))
        .map(|n| n.agent_cert_warning.clone())
        .unwrap_or_default();
    assert!(warning.contains("revoked"), "status warns: {warning:?}");

    // Unknown nodes cannot be revoked (nothing is written for them).
    let unknown = home.control().await?.revoke_node("no-such-node").await;
    assert!(unknown.is_err(), "revoking an unknown node: {unknown:?}");

    // The floor is on disk: a restarted daemon still refuses.
    daemon.stop().await?;
    let daemon = home.start().await?;
    let addr = daemon.host_addr();
    assert_revoked(report_once(&home, addr, &creds, 4).await, "after a restart");

    // A new token brings the node back, with a newer certificate.
    let again = enrol_node_a(&home, &daemon).await?;
    let (reissued, _) = validity(&again.cert_pem)?;
    assert!(reissued >= floor, "dated at or after the floor");
    assert_eq!(report_once(&home, addr, &again, 5).await?.len(), 1);
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_new_enrolment_revokes_the_nodes_earlier_certificates() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let addr = daemon.host_addr();
    let first = enrol_node_a(&home, &daemon).await?;
    assert_eq!(report_once(&home, addr, &first, 1).await?.len(), 1);
    // Re-enrolled at once (same second): the earlier certificate is dead
    // before the new one is even used.
    let second = enrol_node_a(&home, &daemon).await?;
    assert_revoked(
        report_once(&home, addr, &first, 2).await,
        "the earlier certificate",
    );
    assert_eq!(report_once(&home, addr, &second, 3).await?.len(), 1);
    daemon.stop().await?;
    Ok(())
}
