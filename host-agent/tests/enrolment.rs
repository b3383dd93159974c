//! Enrolment over server-authenticated TLS: a token is good once, for one
//! node, until it expires; the certificate's identity comes from the
//! topology, not from the request.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use host_agent::daemon::Daemon;
use support::{BoxError, Home, NODE_A, NODE_A_IP, NODE_B, enrol};
use tonic::Code;

fn code_of(e: &BoxError) -> Option<Code> {
    e.downcast_ref::<tonic::Status>().map(tonic::Status::code)
}

/// A one-minute token for `node`, issued over the daemon's control socket
/// as `hostctl` would.
async fn issue_token(home: &Home, node: &str) -> Result<String, BoxError> {
    Ok(home
        .control()
        .await?
        .issue_token(node, Duration::from_secs(60))
        .await?
        .token)
}

/// Why `daemon` refused to enrol `node` with `token`; an error saying
/// `accepted` if it enrolled it instead.
async fn refusal(
    home: &Home,
    daemon: &Daemon,
    node: &str,
    token: &str,
    accepted: &str,
) -> Result<BoxError, BoxError> {
    enrol(&home.ca_pem(), daemon.enrol_addr(), node, token)
        .await
        .err()
        .ok_or_else(|| accepted.into())
}

#[tokio::test]
async fn enrolment_gives_a_certificate_with_the_node_name_and_topology_address()
-> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let token = issue_token(&home, NODE_A).await?;
    let (resp, creds) = enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &token).await?;

    let der = certs::cert_der_from_pem(&creds.cert_pem)?;
    assert_eq!(certs::common_name_of(&der)?.as_deref(), Some(NODE_A));
    assert_eq!(certs::roles_of(&der)?, vec![certs::ROLE_NODE.to_owned()]);
    let sans: Vec<String> = certs::ip_sans_of(&der)?
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(sans, vec![NODE_A_IP.to_owned()]);
    assert_eq!(resp.ca_pem, home.ca_pem());
    assert_eq!(resp.host_endpoint, daemon.host_addr().to_string());
    assert_eq!(resp.meta.map(|m| m.cluster).as_deref(), Some("app1"));
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_token_is_refused_the_second_time() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let token = issue_token(&home, NODE_A).await?;
    enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &token).await?;
    let err = refusal(
        &home,
        &daemon,
        NODE_A,
        &token,
        "a replayed token was accepted",
    )
    .await?;
    assert_eq!(code_of(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains("already used"), "{err}");
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_expired_token_is_refused() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    // Issued two hours ago for one minute: the daemon re-reads the same
    // token file, with the real clock.
    let past = SystemTime::now() - Duration::from_secs(7200);
    let store = certs::TokenStore::with_clock(home.token_store_path(), Arc::new(move || past));
    let token = store.issue(NODE_A, Duration::from_secs(60))?;
    let err = refusal(
        &home,
        &daemon,
        NODE_A,
        &token,
        "an expired token was accepted",
    )
    .await?;
    assert_eq!(code_of(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_token_for_another_node_is_refused_and_stays_usable_by_its_node() -> Result<(), BoxError>
{
    let home = Home::new()?;
    let daemon = home.start().await?;
    let token = issue_token(&home, NODE_B).await?;
    let err = refusal(
        &home,
        &daemon,
        NODE_A,
        &token,
        "a token for another node was accepted",
    )
    .await?;
    assert_eq!(code_of(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains(NODE_B), "{err}");
    let (_, creds) = enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_B, &token).await?;
    let der = certs::cert_der_from_pem(&creds.cert_pem)?;
    assert_eq!(certs::common_name_of(&der)?.as_deref(), Some(NODE_B));
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn unknown_tokens_and_nodes_outside_the_topology_are_refused() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let forged = "hct1.abcdefgh.0123456789abcdefghijklmnopqrstuv";
    let err = refusal(
        &home,
        &daemon,
        NODE_A,
        forged,
        "a forged token was accepted",
    )
    .await?;
    assert_eq!(code_of(&err), Some(Code::PermissionDenied), "{err}");

    let mut control = home.control().await?;
    let refused = control
        .issue_token("stranger", Duration::from_secs(60))
        .await;
    assert!(
        refused.is_err(),
        "a token was issued for a node outside the topology"
    );
    daemon.stop().await?;
    Ok(())
}
