//! The Host service refuses every caller that is not a node of this PKI
//! speaking for itself. Each refusal is its own test; each also checks
//! that nothing was stored.
//!
//! With TLS 1.3 a refused client certificate surfaces on the first RPC,
//! not at `connect()`, and the error is a transport error whose wording
//! races (alert, broken pipe, reset): the tests assert that the call
//! fails and that nothing reached the store, not the exact text.

use test_support::host_daemon as support;

use std::process::Stdio;
use std::time::Duration;

use rcgen::ExtendedKeyUsagePurpose as Eku;
use support::{
    BoxError, Creds, Home, Mint, NODE_A, NODE_B, foreign_ca, host_channel, report, send_reports,
};
use tonic::Code;

/// Sends one report as `creds` (or without a certificate) and returns the
/// outcome; the daemon is stopped and the store checked to be empty for
/// both test nodes.
async fn report_as(
    home: &Home,
    creds: Option<&Creds>,
    claimed: &str,
) -> Result<tonic::Status, BoxError> {
    let daemon = home.start().await?;
    let outcome = match host_channel(&home.ca_pem(), daemon.host_addr(), creds).await {
        // Refused during connect: fine too, but make it a Status.
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        Ok(ch) => send_reports(ch, vec![report(claimed, "i1", 1, 10)]).await,
    };
    let mut control = home.control().await?;
    for node in [NODE_A, NODE_B] {
        assert!(
            control.history(node, 0).await?.is_empty(),
            "a refused report was stored for {node}"
        );
    }
    daemon.stop().await?;
    match outcome {
        Ok(acks) => Err(format!("the report was accepted: {acks:?}").into()),
        Err(status) => Ok(status),
    }
}

#[tokio::test]
async fn no_client_certificate_is_refused() -> Result<(), BoxError> {
    let home = Home::new()?;
    let status = report_as(&home, None, NODE_A).await?;
    assert_ne!(status.code(), Code::Ok);
    Ok(())
}

#[tokio::test]
async fn openssl_without_a_client_certificate_fails_the_handshake() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let ca = home.path().join("pki/agent/ca.crt");
    // tokio's Command: a blocking wait would stall the in-process daemon.
    let run = tokio::process::Command::new("openssl")
        .args(["s_client", "-tls1_3", "-connect"])
        .arg(daemon.host_addr().to_string())
        .arg("-CAfile")
        .arg(&ca)
        // Keep the connection open long enough to read the server's alert.
        .args(["-ign_eof"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run).await??;
    daemon.stop().await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("alert certificate required"),
        "openssl was not refused with certificate_required:\n{text}"
    );
    assert!(!out.status.success(), "openssl exited 0:\n{text}");
    Ok(())
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() -> Result<(), BoxError> {
    let home = Home::new()?;
    let creds = Mint::node(NODE_A).sign(&foreign_ca()?)?;
    let status = report_as(&home, Some(&creds), NODE_A).await?;
    assert_ne!(status.code(), Code::Ok);
    Ok(())
}

#[tokio::test]
async fn an_expired_certificate_is_refused() -> Result<(), BoxError> {
    let home = Home::new()?;
    let mut mint = Mint::node(NODE_A);
    mint.validity = Some(((2020, 1, 1), (2021, 1, 1)));
    let creds = mint.sign(&home.agent_ca_issuer()?)?;
    let status = report_as(&home, Some(&creds), NODE_A).await?;
    assert_ne!(status.code(), Code::Ok);
    Ok(())
}

#[tokio::test]
async fn a_certificate_without_client_auth_eku_is_refused() -> Result<(), BoxError> {
    let home = Home::new()?;
    let mut mint = Mint::node(NODE_A);
    mint.ekus = vec![Eku::ServerAuth];
    let creds = mint.sign(&home.agent_ca_issuer()?)?;
    let status = report_as(&home, Some(&creds), NODE_A).await?;
    assert_ne!(status.code(), Code::Ok);
    Ok(())
}

/// The handshake (webpki) lets a certificate with no EKU extension at all
/// through; `daemon/authz.rs` must refuse it, as its documentation says.
#[tokio::test]
async fn a_certificate_without_any_eku_extension_is_refused_by_authz() -> Result<(), BoxError> {
    let home = Home::new()?;
    let mut mint = Mint::node(NODE_A);
    mint.ekus = vec![];
    let creds = mint.sign(&home.agent_ca_issuer()?)?;
    let der = certs::cert_der_from_pem(&creds.cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)?;
    assert!(
        cert.extended_key_usage()?.is_none(),
        "the test certificate must have no EKU extension"
    );
    let status = report_as(&home, Some(&creds), NODE_A).await?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    assert!(status.message().contains("clientAuth"), "{status}");
    Ok(())
}

#[tokio::test]
async fn a_certificate_without_the_node_role_may_not_report() -> Result<(), BoxError> {
    let home = Home::new()?;
    let mut mint = Mint::node(NODE_A);
    mint.roles = &[certs::ROLE_ADMIN];
    let creds = mint.sign(&home.agent_ca_issuer()?)?;
    let status = report_as(&home, Some(&creds), NODE_A).await?;
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    Ok(())
}

#[tokio::test]
async fn node_a_cannot_report_as_node_b() -> Result<(), BoxError> {
    let home = Home::new()?;
    let creds = Mint::node(NODE_A).sign(&home.agent_ca_issuer()?)?;
    let status = report_as(&home, Some(&creds), NODE_B).await?;
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert!(status.message().contains("only as itself"), "{status}");
    Ok(())
}

#[tokio::test]
async fn the_same_certificate_reporting_as_itself_is_accepted() -> Result<(), BoxError> {
    // The control case for the refusals above: same minting, right claim.
    let home = Home::new()?;
    let creds = Mint::node(NODE_A).sign(&home.agent_ca_issuer()?)?;
    let daemon = home.start().await?;
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&creds)).await?;
    let acks = send_reports(ch, vec![report(NODE_A, "i1", 1, 10)]).await?;
    assert_eq!(acks.len(), 1);
    assert_eq!(home.control().await?.history(NODE_A, 0).await?.len(), 1);
    daemon.stop().await?;
    Ok(())
}
