//! Enrolment over server-authenticated TLS: a token is good once, for one
//! node, until it expires; the certificate's identity comes from the
//! topology, not from the request.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use support::{BoxError, Home, NODE_A, NODE_A_IP, NODE_B, enrol};
use tonic::Code;

fn code_of(e: &BoxError) -> Option<Code> {
    e.downcast_ref::<tonic::Status>().map(tonic::Status::code)
}

#[tokio::test]
async fn enrolment_gives_a_certificate_with_the_node_name_and_topology_address()
-> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let token = home
        .control()
        .await?
        .issue_token(NODE_A, Duration::from_secs(60))
        .await?;
    let (resp, creds) = enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &token.token).await?;

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
    let token = home
        .control()
        .await?
        .issue_token(NODE_A, Duration::from_secs(60))
        .await?;
    enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &token.token).await?;
    let replay = enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &token.token).await;
    let err = replay.err().ok_or("a replayed token was accepted")?;
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
    let err = enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &token)
        .await
        .err()
        .ok_or("an expired token was accepted")?;
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
    let token = home
        .control()
        .await?
        .issue_token(NODE_B, Duration::from_secs(60))
        .await?;
    let err = enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &token.token)
        .await
        .err()
        .ok_or("a token for another node was accepted")?;
    assert_eq!(code_of(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains(NODE_B), "{err}");
    let (_, creds) = enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_B, &token.token).await?;
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
    let err = enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, forged)
        .await
        .err()
        .ok_or("a forged token was accepted")?;
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
