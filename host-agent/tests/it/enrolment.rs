//! Enrolment over server-authenticated TLS: a token is good once, for one
//! node, until it expires; the certificate's identity comes from the
//! topology, not from the request. Every refusal of a name or token looks
//! the same to the peer; the precise reason is in the host's log (with the
//! peer's address) and, only for a token the host issued for that node, in
//! the node's refusal record. Attempts are rate-limited.

use test_support::host_daemon as support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use host_agent::daemon::enrolment::{RATE_LIMITED, REFUSED};
use host_agent::daemon::ratelimit::{BucketSpec, EnrolLimits};
use host_agent::daemon::{Daemon, DaemonConfig};
use proto::v1::EnrolmentRefusal;
use support::{BoxError, Home, NODE_A, NODE_A_IP, NODE_B, enrol, issue_token};
use tonic::Code;

/// Everything the daemons of this test binary log, for the tests that
/// check log lines (a global subscriber: handlers run on any thread).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_lines() -> Vec<String> {
    let bytes = captured_logs()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `node`'s last enrolment refusal as `status` shows it.
async fn recorded_refusal(home: &Home, node: &str) -> Result<Option<EnrolmentRefusal>, BoxError> {
    let status = home.control().await?.status().await?;
    Ok(status
        .nodes
        .into_iter()
        .find(|n| n.meta.as_ref().is_some_and(|m| m.node == node))
        .ok_or_else(|| format!("{node} missing from status"))?
        .last_enrolment_refusal)
}

/// The status a refused attempt ended with.
fn status_of(e: &BoxError) -> Result<&tonic::Status, BoxError> {
    e.downcast_ref::<tonic::Status>()
        .ok_or_else(|| format!("not a gRPC status: {e}").into())
}

/// `token` with its secret part replaced: the right id, the wrong secret.
fn with_wrong_secret(token: &str) -> String {
    let id = token.split('.').nth(1).unwrap_or_default();
    format!("hct1.{id}.{}", "0".repeat(32))
}

/// A token for `node` that expired an hour ago (issued with a past clock
/// into the daemon's token file).
fn expired_token(home: &Home, node: &str) -> Result<String, BoxError> {
    let past = SystemTime::now() - Duration::from_secs(7200);
    let store = certs::TokenStore::with_clock(home.token_store_path(), Arc::new(move || past));
    Ok(store.issue(node, Duration::from_secs(60))?)
}

fn code_of(e: &BoxError) -> Option<Code> {
    e.downcast_ref::<tonic::Status>().map(tonic::Status::code)
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
    assert_eq!(status_of(&err)?.message(), REFUSED);
    // The precise reason is the node's own record: the token was its own.
    let record = recorded_refusal(&home, NODE_A).await?.ok_or("no record")?;
    assert!(record.reason.contains("already used"), "{record:?}");
    assert!(record.peer.starts_with("127.0.0.1:"), "{record:?}");
    // It is the token the node's machine holds (its newest): `up` stops
    // waiting on it whenever it happened. A relaunch (a newer token) makes
    // it history.
    assert!(record.current_token, "{record:?}");
    issue_token(&home, NODE_A).await?;
    let record = recorded_refusal(&home, NODE_A).await?.ok_or("no record")?;
    assert!(!record.current_token, "after a newer token: {record:?}");
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_expired_token_is_refused() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    // Issued two hours ago for one minute: the daemon re-reads the same
    // token file, with the real clock.
    let token = expired_token(&home, NODE_A)?;
    let err = refusal(
        &home,
        &daemon,
        NODE_A,
        &token,
        "an expired token was accepted",
    )
    .await?;
    assert_eq!(code_of(&err), Some(Code::PermissionDenied), "{err}");
    assert_eq!(status_of(&err)?.message(), REFUSED);
    let record = recorded_refusal(&home, NODE_A).await?.ok_or("no record")?;
    assert!(record.reason.contains("expired"), "{record:?}");
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
    assert!(
        !err.to_string().contains(NODE_B),
        "names the token's node: {err}"
    );
    // Not NODE_A's token, and NODE_B did not present it: no record for either.
    assert_eq!(recorded_refusal(&home, NODE_A).await?, None);
    assert_eq!(recorded_refusal(&home, NODE_B).await?, None);
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

#[tokio::test]
async fn every_refusal_of_a_name_or_token_looks_the_same_to_the_peer() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let good_a = issue_token(&home, NODE_A).await?;
    let spent = issue_token(&home, NODE_A).await?;
    enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &spent).await?;
    let for_b = issue_token(&home, NODE_B).await?;
    let cases = [
        ("a node outside the topology", "stranger", good_a.clone()),
        (
            "a forged token",
            NODE_A,
            "hct1.abcdefgh.0123456789abcdefghijklmnopqrstuv".to_owned(),
        ),
        ("a wrong secret", NODE_A, with_wrong_secret(&good_a)),
        ("an expired token", NODE_A, expired_token(&home, NODE_A)?),
        ("a used token", NODE_A, spent),
        ("another node's token", NODE_A, for_b),
        ("not a token at all", NODE_B, "garbage".to_owned()),
    ];
    for (what, node, token) in cases {
        let err = refusal(&home, &daemon, node, &token, what).await?;
        let status = status_of(&err)?;
        assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status}");
        assert_eq!(status.message(), REFUSED, "{what}");
        assert!(status.details().is_empty(), "{what}: details");
        assert!(
            status.metadata().get("grpc-status-details-bin").is_none(),
            "{what}"
        );
    }
    // The good token was never spent by the refusals above.
    enrol(&home.ca_pem(), daemon.enrol_addr(), NODE_A, &good_a).await?;
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn only_a_refusal_of_the_nodes_own_token_is_recorded_as_its_refusal() -> Result<(), BoxError>
{
    let home = Home::new()?;
    let daemon = home.start().await?;
    // Noise naming the node: a random token id, then garbage.
    for noise in ["hct1.zzzzzzzz.0123456789abcdefghijklmnopqrstuv", "x"] {
        refusal(&home, &daemon, NODE_A, noise, "noise was accepted").await?;
    }
    assert_eq!(
        recorded_refusal(&home, NODE_A).await?,
        None,
        "unauthenticated noise was recorded as the node's refusal"
    );
    // The node's own token id with a corrupted secret (a damaged
    // user-data): that is the node's refusal, with the precise reason.
    let token = issue_token(&home, NODE_A).await?;
    refusal(
        &home,
        &daemon,
        NODE_A,
        &with_wrong_secret(&token),
        "a wrong secret",
    )
    .await?;
    let record = recorded_refusal(&home, NODE_A).await?.ok_or("no record")?;
    assert!(
        record.reason.contains("unknown enrolment token"),
        "{record:?}"
    );
    assert!(!record.peer.is_empty(), "{record:?}");
    daemon.stop().await?;
    Ok(())
}

/// Limits that never refill, so the test needs no clock.
fn limits(per_peer: u32, total: u32) -> EnrolLimits {
    let bucket = |burst| BucketSpec {
        burst,
        refill_per_second: 0.0,
    };
    EnrolLimits {
        per_peer: bucket(per_peer),
        total: bucket(total),
        max_peers: 16,
    }
}

async fn start_with(home: &Home, limits: EnrolLimits) -> Result<Daemon, BoxError> {
    let mut config: DaemonConfig = home.config();
    config.enrol_limits = limits;
    Ok(Daemon::start(config, home.pki.clone()).await?)
}

#[tokio::test]
async fn enrolment_attempts_are_rate_limited_per_peer() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = start_with(&home, limits(3, 100)).await?;
    let token = issue_token(&home, NODE_A).await?;
    for _ in 0..3 {
        let err = refusal(&home, &daemon, NODE_A, "hct1.zzzzzzzz.x", "noise").await?;
        assert_eq!(code_of(&err), Some(Code::PermissionDenied), "{err}");
    }
    // The bucket of 127.0.0.1 is empty: even a good token waits.
    let err = refusal(&home, &daemon, NODE_A, &token, "a 4th attempt was served").await?;
    let status = status_of(&err)?;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert_eq!(status.message(), RATE_LIMITED);
    assert_eq!(recorded_refusal(&home, NODE_A).await?, None);
    // ... and was not spent.
    let file = std::fs::read_to_string(home.token_store_path())?;
    assert!(!file.contains("\"used_at\": 1"), "{file}");
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn enrolment_attempts_are_rate_limited_in_total() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = start_with(&home, limits(100, 2)).await?;
    for _ in 0..2 {
        let err = refusal(&home, &daemon, NODE_B, "x", "noise").await?;
        assert_eq!(code_of(&err), Some(Code::PermissionDenied), "{err}");
    }
    let err = refusal(&home, &daemon, NODE_B, "x", "a 3rd attempt was served").await?;
    assert_eq!(code_of(&err), Some(Code::ResourceExhausted), "{err}");
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn refused_token_log_lines_name_the_peer_and_the_precise_reason() -> Result<(), BoxError> {
    captured_logs();
    let home = Home::new()?;
    let daemon = home.start().await?;
    let token = expired_token(&home, NODE_B)?;
    refusal(
        &home,
        &daemon,
        NODE_B,
        &token,
        "an expired token was accepted",
    )
    .await?;
    daemon.stop().await?;
    let lines = log_lines();
    let refused: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("enrolment refused"))
        .collect();
    assert!(
        refused
            .iter()
            .any(|l| l.contains("expired") && l.contains(NODE_B)),
        "no log line for the refusal:\n{}",
        lines.join("\n")
    );
    for line in refused {
        assert!(line.contains("peer=127.0.0.1:"), "no peer address: {line}");
    }
    Ok(())
}
