//! Enrolment against the harness host: token exchange, stored identity,
//! refusals, and the node refusing a host it should not trust.

use test_support::node_harness as harness;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use harness::{Harness, HarnessHost, TestPki, TestResult, install_crypto, state_path};
use node_agent::agent::{self, AgentError};
use node_agent::config::Secret;
use node_agent::enrol::{self, AttemptError, EnrolError};

fn mode(path: &std::path::Path) -> TestResult<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[tokio::test]
async fn enrolment_stores_a_private_key_and_a_certificate_for_the_node() -> TestResult {
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    agent::start(h.enrolling_config("app1-cp", root.path())?).await?;

    assert_eq!(mode(&state_path(root.path(), "key.pem"))?, 0o600);
    assert_eq!(mode(&root.path().join("state"))?, 0o700);
    let cert = std::fs::read_to_string(state_path(root.path(), "cert.pem"))?;
    let der = certs::cert_der_from_pem(&cert)?;
    assert_eq!(certs::common_name_of(&der)?.as_deref(), Some("app1-cp"));
    assert_eq!(certs::roles_of(&der)?, vec![certs::ROLE_NODE.to_owned()]);
    Ok(())
}

#[tokio::test]
async fn a_restarted_agent_reuses_its_certificate_without_a_token() -> TestResult {
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    let config = h.enrolling_config("n1", root.path())?;
    agent::start(config.clone()).await?;
    let first = std::fs::read(state_path(root.path(), "cert.pem"))?;

    // No token at all: only the stored identity can make this succeed.
    let mut without = config.clone();
    without.enrolment_token = None;
    agent::start(without).await?;
    // The spent token still in the config must not be sent again (the host
    // would refuse the replay).
    agent::start(config).await?;
    assert_eq!(std::fs::read(state_path(root.path(), "cert.pem"))?, first);
    Ok(())
}

#[tokio::test]
async fn no_certificate_and_no_token_is_a_clear_error() -> TestResult {
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    let err = agent::start(h.config("n1", root.path(), None))
        .await
        .err()
        .ok_or("started without identity")?;
    assert!(
        matches!(err, AgentError::Enrol(EnrolError::NoToken { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("no enrolmentToken"), "{err}");
    Ok(())
}

/// Enrols `node` with `token` in a fresh state dir and returns the refusal.
async fn refusal(h: &Harness, node: &str, token: &str) -> TestResult<String> {
    let root = tempfile::tempdir()?;
    let config = h.config(node, root.path(), Some(token.into()));
    let outcome = tokio::time::timeout(Duration::from_secs(20), agent::start(config)).await?;
    match outcome {
        Err(AgentError::Enrol(
            e @ EnrolError::Refused {
                code: tonic::Code::PermissionDenied,
                ..
            },
        )) => {
            assert!(!state_path(root.path(), "cert.pem").exists());
            Ok(e.to_string())
        }
        Err(other) => Err(format!("expected a refusal, got {other}").into()),
        Ok(_) => Err("enrolment unexpectedly succeeded".into()),
    }
}

#[tokio::test]
async fn replayed_foreign_and_expired_tokens_are_refused_with_the_hosts_reason() -> TestResult {
    let h = Harness::start().await?;

    let foreign = h.pki.issue_token("other-node")?;
    let msg = refusal(&h, "n1", &foreign).await?;
    assert!(
        msg.contains("refused enrolment") && msg.contains("issued for node \"other-node\""),
        "{msg}"
    );

    let token = h.pki.issue_token("n1")?;
    let root = tempfile::tempdir()?;
    agent::start(h.config("n1", root.path(), Some(token.clone()))).await?;
    let msg = refusal(&h, "n1", &token).await?;
    assert!(msg.contains("already used"), "{msg}");

    let expired = h.pki.pki.token_store().issue("n2", Duration::ZERO)?;
    let msg = refusal(&h, "n2", &expired).await?;
    assert!(msg.contains("expired"), "{msg}");
    Ok(())
}

/// One enrolment attempt's error against `host` with `server_name`.
async fn attempt_error(h: &Harness, server_name: &str) -> TestResult<String> {
    let root = tempfile::tempdir()?;
    let mut config = h.config("n1", root.path(), None);
    config.host.server_name = server_name.into();
    let token = Secret::new(h.pki.issue_token("n1")?);
    match enrol::enrol_once(&config, &token, "csr").await {
        Err(AttemptError::Transient(e)) => Ok(e),
        Err(other) => Err(format!("expected a TLS failure, got {other}").into()),
        Ok(_) => Err("the node trusted the host".into()),
    }
}

#[tokio::test]
async fn the_node_refuses_a_host_certificate_without_the_expected_name() -> TestResult {
    let h = Harness::start().await?;
    let err = attempt_error(&h, "host.example").await?;
    assert!(err.contains("not valid for name"), "{err}");
    // The same host is accepted under the name its certificate carries, so
    // the refusal above is about the name and nothing else.
    let root = tempfile::tempdir()?;
    agent::start(h.enrolling_config("n1", root.path())?).await?;
    Ok(())
}

#[tokio::test]
async fn the_node_refuses_a_host_certificate_from_another_ca() -> TestResult {
    install_crypto();
    let pki = TestPki::new()?;
    let impostor = TestPki::new()?;
    let host = HarnessHost::start_with_identity(&pki, impostor.host_identity()).await?;
    let err = attempt_error(&Harness { pki, host }, "127.0.0.1").await?;
    // Both CAs are called "hostctl agent CA", so webpki finds the issuer by
    // name and then rejects the signature.
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(
        err.contains("BadSignature") || err.contains("UnknownIssuer"),
        "{err}"
    );
    Ok(())
}
