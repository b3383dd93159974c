//! Renewal of the agent's own certificate against the harness host: by
//! itself once two thirds of the lifetime have passed (the date moved with
//! the injected clock, nothing waits for it), on request over
//! `Node.RenewCertificate`, refused renewals, and the spent-token rule for
//! an agent whose certificate is no longer usable.

use test_support::node_harness as harness;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use certs::Clock;
use harness::{Harness, RunningAgent, SeenCert, TestResult, state_path};
use node_agent::agent::{self, AgentError};
use node_agent::enrol::EnrolError;
use node_agent::identity::NodeIdentity;
use proto::v1::node_client::NodeClient;
use proto::v1::{ErrorCode, LogsRequest, RenewNowRequest, RenewNowResponse, VersionRequest};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncWriteExt;
use tonic::transport::{Channel, Identity};

/// Generous: the suite must pass on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// The date `offset` from now, for ever (the harness issues 30 days).
fn clock_ahead(offset: Duration) -> Arc<dyn Clock> {
    Arc::new(move || SystemTime::now() + offset)
}

fn read(root: &std::path::Path, file: &str) -> TestResult<String> {
    Ok(std::fs::read_to_string(state_path(root, file))?)
}

/// The files in the state directory, sorted.
fn state_files(root: &std::path::Path) -> TestResult<Vec<String>> {
    let mut names = std::fs::read_dir(root.join("state"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    Ok(names)
}

async fn node_client(r: &RunningAgent, id: Identity) -> TestResult<NodeClient<Channel>> {
    Ok(NodeClient::new(r.channel(Some(id), DEADLINE).await?))
}

/// The certificate the Node service presents to a new connection (a
/// client with the host's certificate, as `hostctl` would connect).
async fn served_certificate(r: &RunningAgent) -> TestResult<SeenCert> {
    let host = r.pki.pki.host_identity();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(r.pki.pki.agent_ca_pem().as_bytes()) {
        roots.add(ca?)?;
    }
    let chain =
        CertificateDer::pem_slice_iter(host.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(host.key_pem.expose().as_bytes())?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(r.addr).await?;
    let name = ServerName::try_from("127.0.0.1")?;
    let mut tls = tokio::time::timeout(DEADLINE, connector.connect(name, tcp)).await??;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| SeenCert::of_der(c.as_ref()))
        .ok_or("no server certificate")??;
    let _ = tls.shutdown().await;
    Ok(cert)
}

async fn renew_now(c: &mut NodeClient<Channel>) -> TestResult<RenewNowResponse> {
    Ok(
        tokio::time::timeout(DEADLINE, c.renew_certificate(RenewNowRequest {}))
            .await??
            .into_inner(),
    )
}

#[tokio::test]
async fn past_two_thirds_of_its_lifetime_the_agent_renews_by_itself() -> TestResult {
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    let started = agent::start(h.enrolling_config("n1", root.path())?).await?;
    let (old_cert, old_key) = (
        read(root.path(), "cert.pem")?,
        read(root.path(), "key.pem")?,
    );
    let old = SeenCert::of_pem(&old_cert)?;

    // 21 of 30 days: past two thirds, still valid. The stand-in host
    // answers the renewal once two reports came with the old certificate.
    let started = started.with_clock(clock_ahead(21 * DAY));
    let cell = started.identity_cell();
    h.host.hold_renewal_until_stored(2)?;
    let r = RunningAgent::spawn(h, root, started)?;

    let deadline = tokio::time::Instant::now() + DEADLINE;
    while cell.current().serial == old.serial {
        if tokio::time::Instant::now() > deadline {
            return Err("the agent did not renew its certificate".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let renewed = cell.current();

    // Stored: the new pair, a new key, nothing staged left behind.
    let (cert, key) = (
        read(r.root.path(), "cert.pem")?,
        read(r.root.path(), "key.pem")?,
    );
    assert_eq!(cert, renewed.cert_pem);
    assert_eq!(key, renewed.key_pem.expose());
    assert_ne!(key, old_key, "renewal must make a new key");
    NodeIdentity::check(&cert, &key, r.pki.pki.agent_ca_pem(), "n1")?;
    assert_eq!(
        state_files(r.root.path())?,
        ["cert.pem", "key.pem", "token.sha256"]
    );
    assert!(SeenCert::of_pem(&cert)?.not_after >= old.not_after);

    // The next report stream presents the new certificate...
    let serial = renewed.serial.clone();
    r.host
        .wait_until(DEADLINE, "a report stream with the new certificate", |s| {
            s.report_certs.iter().any(|c| c.serial == serial)
        })
        .await?;
    // ... and reports keep arriving on it, none lost across the switch.
    r.host
        .wait_until(DEADLINE, "two reports over the new certificate", |s| {
            s.stored_via.iter().filter(|v| **v == serial).count() >= 2
        })
        .await?;
    let (stored, via) = r
        .host
        .with_seen(|s| (s.stored.clone(), s.stored_via.clone()))?;
    assert_eq!(via.first(), Some(&old.serial), "no report before renewal");
    let mut seqs = harness::seqs(&stored);
    seqs.sort_unstable();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "a report was lost across the renewal");
    // Once: the renewed certificate is not due, so no loop.
    assert_eq!(r.host.with_seen(|s| s.renew_calls)?, 1);
    Ok(())
}

#[tokio::test]
async fn node_renew_certificate_renews_now_and_keeps_calls_in_flight() -> TestResult {
    let r = RunningAgent::start().await?;
    let before = served_certificate(&r).await?;
    let enrolled = SeenCert::of_pem(&read(r.root.path(), "cert.pem")?)?;
    assert_eq!(
        before, enrolled,
        "the Node service serves the node certificate"
    );

    // A streaming call in flight on a connection opened before renewal.
    let log = r.root.path().join("var/log/hostctl/node-agent.log");
    std::fs::create_dir_all(log.parent().ok_or("no parent")?)?;
    std::fs::write(&log, "before\n")?;
    let mut c = node_client(&r, r.pki.host_identity()).await?;
    let follow = LogsRequest {
        unit: String::new(),
        follow: true,
        tail: Some(1),
    };
    let mut stream = c.logs(follow).await?.into_inner();
    let mut next_lines = async || -> TestResult<Vec<String>> {
        let chunk = tokio::time::timeout(DEADLINE, stream.message())
            .await??
            .ok_or("the Logs stream ended")?;
        Ok(chunk.lines.into_iter().map(|l| l.message).collect())
    };
    assert_eq!(next_lines().await?, ["before"]);

    let response = renew_now(&mut c).await?;
    assert!(response.error.is_none(), "{:?}", response.error);
    assert_eq!(response.meta.map(|m| m.node).as_deref(), Some("n1"));
    let stored = SeenCert::of_pem(&read(r.root.path(), "cert.pem")?)?;
    assert_ne!(stored.serial, before.serial);
    let not_after = response.not_after.ok_or("no not_after")?;
    assert_eq!(not_after.seconds, stored.not_after);

    // A new connection gets the new certificate.
    assert_eq!(served_certificate(&r).await?, stored);
    // The stream opened before carries on, and so does its connection.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log)?;
    std::io::Write::write_all(&mut file, b"after\n")?;
    assert_eq!(next_lines().await?, ["after"]);
    c.version(VersionRequest {}).await?;
    assert_eq!(r.host.with_seen(|s| s.renew_calls)?, 1);
    Ok(())
}

#[tokio::test]
async fn a_refused_renewal_keeps_the_old_certificate_and_says_why() -> TestResult {
    let r = RunningAgent::start().await?;
    let (cert, key) = (
        read(r.root.path(), "cert.pem")?,
        read(r.root.path(), "key.pem")?,
    );
    let served = served_certificate(&r).await?;
    let mut c = node_client(&r, r.pki.host_identity()).await?;
    for code in [tonic::Code::PermissionDenied, tonic::Code::Unauthenticated] {
        r.host
            .refuse_renewal(Some((code, "node n1 is not allowed to renew")))?;
        let response = renew_now(&mut c).await?;
        let error = response.error.ok_or("a refused renewal reported success")?;
        assert_eq!(error.code, ErrorCode::PermissionDenied as i32, "{error:?}");
        assert!(
            error.message.contains("refused to renew")
                && error.message.contains("node n1 is not allowed to renew"),
            "{}",
            error.message
        );
        assert!(response.not_after.is_none());

        // Files, served certificate: all as before.
        assert_eq!(read(r.root.path(), "cert.pem")?, cert);
        assert_eq!(read(r.root.path(), "key.pem")?, key);
        assert_eq!(
            state_files(r.root.path())?,
            ["cert.pem", "key.pem", "token.sha256"]
        );
        assert_eq!(served_certificate(&r).await?, served);
    }
    // Once the host agrees again, the same call renews.
    r.host.refuse_renewal(None)?;
    let response = renew_now(&mut c).await?;
    assert!(response.error.is_none(), "{:?}", response.error);
    assert_ne!(read(r.root.path(), "cert.pem")?, cert);
    Ok(())
}

#[tokio::test]
async fn an_expired_certificate_with_its_spent_token_is_refused_once_and_stops() -> TestResult {
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    let config = h.enrolling_config("n1", root.path())?;
    agent::start(config.clone()).await?;
    let cert = read(root.path(), "cert.pem")?;
    assert!(
        !read(root.path(), "token.sha256")?
            .contains(config.enrolment_token.as_ref().ok_or("no token")?.expose()),
        "the token itself is stored"
    );
    assert_eq!(h.host.with_seen(|s| s.enrol_calls)?, 1);

    // A month and a day later, same config, same (spent) token.
    let start = agent::start_with_clock(config, clock_ahead(31 * DAY));
    let err = tokio::time::timeout(DEADLINE, start)
        .await?
        .err()
        .ok_or("started with an expired certificate")?;
    assert!(
        matches!(err, AgentError::Enrol(EnrolError::TokenSpent { .. })),
        "{err}"
    );
    assert!(err.needs_new_token());
    let msg = err.to_string();
    for part in [
        "certificate expired at",
        "already spent",
        "new enrolment token",
        "hostctl up",
        "enrolmentToken",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    // Sent once more (so the host records the refusal and `up` stops
    // waiting at once), then never again: the unit does not restart exit 3.
    assert_eq!(
        h.host.with_seen(|s| s.enrol_calls)?,
        2,
        "the spent token is sent exactly once more"
    );
    assert_eq!(read(root.path(), "cert.pem")?, cert, "files were changed");
    Ok(())
}

#[tokio::test]
async fn an_unusable_certificate_enrols_again_with_a_new_token_only() -> TestResult {
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    let config = h.enrolling_config("n1", root.path())?;
    agent::start(config.clone()).await?;
    std::fs::write(state_path(root.path(), "cert.pem"), "damaged")?;

    let err = agent::start(config.clone())
        .await
        .err()
        .ok_or("started with a damaged certificate")?;
    assert!(
        matches!(err, AgentError::Enrol(EnrolError::TokenSpent { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("unreadable"), "{err}");

    let mut fresh = config;
    fresh.enrolment_token = Some(node_agent::config::Secret::new(h.pki.issue_token("n1")?));
    let started = agent::start(fresh).await?;
    assert_eq!(read(root.path(), "cert.pem")?, started.identity().cert_pem);
    // Enrolled, refused once with the spent token, enrolled with the new.
    assert_eq!(h.host.with_seen(|s| s.enrol_calls)?, 3);
    Ok(())
}

#[tokio::test]
async fn a_renewal_interrupted_after_the_key_was_replaced_completes_at_the_next_start() -> TestResult
{
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    let mut config = h.enrolling_config("n1", root.path())?;
    agent::start(config.clone()).await?;

    // The crash point where the two files disagree: the new key renamed
    // into place, the new certificate still staged.
    let (key, csr) = certs::generate_node_key_and_csr("n1")?;
    let cert = h.pki.sign_node("n1", &csr)?;
    std::fs::write(state_path(root.path(), "key.pem"), &key)?;
    std::fs::write(state_path(root.path(), "cert.pem.next"), &cert)?;

    config.enrolment_token = None;
    let started = agent::start(config).await?;
    assert_eq!(started.identity().cert_pem, cert);
    assert_eq!(read(root.path(), "cert.pem")?, cert);
    assert_eq!(
        state_files(root.path())?,
        ["cert.pem", "key.pem", "token.sha256"]
    );
    Ok(())
}

#[tokio::test]
async fn a_caller_without_the_host_or_admin_role_cannot_renew() -> TestResult {
    let r = RunningAgent::start().await?;
    let cert = read(r.root.path(), "cert.pem")?;
    let mut c = node_client(&r, r.pki.node_identity("n2")?).await?;
    let status = c
        .renew_certificate(RenewNowRequest {})
        .await
        .err()
        .ok_or("another node's certificate was allowed to renew")?;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
    assert_eq!(r.host.with_seen(|s| s.renew_calls)?, 0);
    assert_eq!(read(r.root.path(), "cert.pem")?, cert);
    // The admin may.
    let mut admin = node_client(&r, r.pki.admin_identity()).await?;
    let response = renew_now(&mut admin).await?;
    assert!(response.error.is_none(), "{:?}", response.error);
    Ok(())
}
