//! The Node service over mutual TLS: who may call it, and what Version,
//! Health and Logs (file source) answer.

use test_support::node_harness as harness;

use std::io::Write;
use std::time::Duration;

use harness::{RunningAgent, TestResult};
use proto::v1::node_client::NodeClient;
use proto::v1::{CheckStatus, HealthRequest, LogsRequest, VersionRequest};
use tonic::transport::{Channel, Identity};

async fn running() -> TestResult<RunningAgent> {
    RunningAgent::start().await
}

async fn client(r: &RunningAgent, identity: Option<Identity>) -> TestResult<NodeClient<Channel>> {
    Ok(NodeClient::new(
        r.channel(identity, Duration::from_secs(10)).await?,
    ))
}

#[tokio::test]
async fn the_host_and_admin_certificates_are_served() -> TestResult {
    let r = running().await?;
    for id in [r.pki.host_identity(), r.pki.admin_identity()] {
        let v = client(&r, Some(id))
            .await?
            .version(VersionRequest {})
            .await?
            .into_inner();
        assert_eq!(
            v.meta.map(|m| (m.node, m.cluster)),
            Some(("n1".into(), "test".into()))
        );
        assert_eq!(v.api_version, proto::v1::API_VERSION);
        assert_eq!(v.arch, std::env::consts::ARCH);
    }
    Ok(())
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() -> TestResult {
    let r = running().await?;
    // With TLS 1.3 the refusal shows on the first call, not on connect.
    let outcome = match client(&r, None).await {
        Ok(mut c) => c
            .version(VersionRequest {})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(
        outcome.is_err(),
        "a client without a certificate was served"
    );
    Ok(())
}

#[tokio::test]
async fn another_nodes_certificate_is_refused() -> TestResult {
    let r = running().await?;
    let other = r.pki.node_identity("n2")?;
    let status = client(&r, Some(other))
        .await?
        .version(VersionRequest {})
        .await
        .err()
        .ok_or("a node certificate was served")?;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
    assert!(status.message().contains("n2"), "{status}");
    Ok(())
}

#[tokio::test]
async fn health_on_an_empty_root_reports_not_applicable_checks() -> TestResult {
    let r = running().await?;
    let h = client(&r, Some(r.pki.host_identity()))
        .await?
        .health(HealthRequest {})
        .await?
        .into_inner();
    let report = h.report.ok_or("no report")?;
    assert_eq!(report.node, "n1");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "containerd",
            "kubelet",
            "kubelet-healthz",
            "cni",
            "certificates",
            "cloud-init"
        ]
    );
    for c in &report.checks {
        assert_eq!(c.status, CheckStatus::NotApplicable as i32, "{c:?}");
        assert!(!c.message.is_empty(), "{c:?}");
    }
    Ok(())
}

#[tokio::test]
async fn logs_from_the_file_source_tail_then_follow() -> TestResult {
    let r = running().await?;
    let log = r.root.path().join("var/log/hostctl/node-agent.log");
    std::fs::create_dir_all(log.parent().ok_or("no parent")?)?;
    std::fs::write(&log, "one\ntwo\nthree\n")?;
    let mut c = client(&r, Some(r.pki.host_identity())).await?;

    let request = |follow, tail| LogsRequest {
        unit: String::new(),
        follow,
        tail,
    };
    let mut lines_for =
        async |tail| -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
            let mut stream = c.logs(request(false, tail)).await?.into_inner();
            let mut lines = Vec::new();
            while let Some(chunk) = stream.message().await? {
                assert!(chunk.error.is_none(), "{chunk:?}");
                lines.extend(chunk.lines.into_iter().map(|l| l.message));
            }
            Ok(lines)
        };
    assert_eq!(lines_for(Some(2)).await?, ["two", "three"]);
    // `--tail 0` is no lines, not the default; no tail is the default (100).
    assert!(lines_for(Some(0)).await?.is_empty());
    assert_eq!(lines_for(None).await?, ["one", "two", "three"]);

    let mut stream = c.logs(request(true, Some(2))).await?.into_inner();
    let mut seen = Vec::new();
    let mut appended = false;
    while seen.len() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await??
            .ok_or("stream ended while following")?;
        seen.extend(chunk.lines.into_iter().map(|l| l.message));
        if !appended {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log)?;
            f.write_all(b"four\n")?;
            appended = true;
        }
    }
    assert_eq!(seen, ["two", "three", "four"]);
    Ok(())
}

#[tokio::test]
async fn logs_for_a_unit_the_file_source_lacks_are_a_typed_error() -> TestResult {
    let r = running().await?;
    let mut c = client(&r, Some(r.pki.host_identity())).await?;
    let request = LogsRequest {
        unit: "kubelet".into(),
        follow: false,
        tail: None,
    };
    let chunk = c
        .logs(request)
        .await?
        .into_inner()
        .message()
        .await?
        .ok_or("no chunk")?;
    let err = chunk.error.ok_or("no error")?;
    assert_eq!(err.code, proto::v1::ErrorCode::NotFound as i32);
    assert!(err.message.contains("kubelet"), "{}", err.message);
    Ok(())
}

/// The Node service does its own TLS (its certificate can change at run
/// time): handshakes must still run side by side, and one that never
/// starts must end by itself (10 s).
#[tokio::test]
async fn a_silent_peer_neither_blocks_others_nor_stays_connected() -> TestResult {
    use tokio::io::AsyncReadExt;
    let r = running().await?;
    let mut silent = tokio::net::TcpStream::connect(r.addr).await?;
    // Served while the silent peer's handshake is pending.
    client(&r, Some(r.pki.host_identity()))
        .await?
        .version(VersionRequest {})
        .await?;
    // The agent drops it (EOF or reset); generous deadline, no timing
    // assertion beyond "eventually".
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(60), silent.read(&mut buf)).await?;
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    Ok(())
}
