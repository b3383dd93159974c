//! Report ingest end to end: acknowledged after storing, never stored
//! twice, bounded history, staleness, connection tracking, survival across
//! a daemon restart, and the `hostctl status -o json` shape.

use test_support::host_daemon as support;

use std::time::{Duration, SystemTime};

use host_agent::daemon::Daemon;

use proto::v1::host_client::HostClient;
use proto::v1::{HealthReport, NodeStatus, ReportAck};
use support::{
    BoxError, Creds, Home, Mint, NODE_A, NODE_B, TestClock, host_channel, report, send_reports,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn seqs(acks: &[ReportAck]) -> Vec<u64> {
    acks.iter().map(|a| a.seq).collect()
}

/// The sequence numbers of a stored history, oldest first.
fn stored_seqs(history: &[proto::v1::StoredReport]) -> Vec<u64> {
    history
        .iter()
        .filter_map(|r| r.report.as_ref())
        .map(|r| r.seq)
        .collect()
}

fn reports(node: &str, instance: &str, range: std::ops::RangeInclusive<u64>) -> Vec<HealthReport> {
    range.map(|s| report(node, instance, s, 10)).collect()
}

async fn node_status(home: &Home, node: &str) -> Result<NodeStatus, BoxError> {
    let status = home.control().await?.status().await?;
    status
        .nodes
        .into_iter()
        .find(|n| n.meta.as_ref().is_some_and(|m| m.node == node))
        .ok_or_else(|| format!("{node} missing from status").into())
}

fn node_a(home: &Home) -> Result<Creds, BoxError> {
    Mint::node(NODE_A).sign(&home.agent_ca_issuer()?)
}

#[tokio::test]
async fn reports_are_acknowledged_stored_once_and_resends_are_deduplicated() -> Result<(), BoxError>
{
    let home = Home::new()?;
    let daemon = home.start().await?;
    let creds = node_a(&home)?;
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&creds)).await?;
    let acks = send_reports(ch.clone(), reports(NODE_A, "i1", 1..=3)).await?;
    assert_eq!(seqs(&acks), vec![1, 2, 3]);

    // A reconnecting node re-sends what it believes unacknowledged.
    let acks = send_reports(ch, reports(NODE_A, "i1", 2..=5)).await?;
    assert_eq!(
        seqs(&acks),
        vec![2, 3, 4, 5],
        "duplicates must be acknowledged too"
    );

    let history = home.control().await?.history(NODE_A, 0).await?;
    let stored = stored_seqs(&history);
    assert_eq!(
        stored,
        vec![1, 2, 3, 4, 5],
        "each report exactly once, in order"
    );
    assert!(history.iter().all(|r| r.received_at.is_some()));
    let status = node_status(&home, NODE_A).await?;
    assert_eq!(status.reports_stored, 5);
    assert_eq!(status.last_report.map(|r| r.seq), Some(5));
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_restarted_agent_instance_starts_again_at_seq_one() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&node_a(&home)?)).await?;
    send_reports(ch.clone(), reports(NODE_A, "first", 1..=4)).await?;
    send_reports(ch, reports(NODE_A, "second", 1..=2)).await?;
    let history = home.control().await?.history(NODE_A, 0).await?;
    assert_eq!(history.len(), 6);
    let latest = node_status(&home, NODE_A)
        .await?
        .last_report
        .ok_or("no latest")?;
    assert_eq!((latest.agent_instance.as_str(), latest.seq), ("second", 2));
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_history_window_keeps_only_the_newest_reports() -> Result<(), BoxError> {
    let home = Home::new()?;
    let mut config = home.config();
    config.history_limit = 3;
    let daemon = host_agent::daemon::Daemon::start(config, home.pki.clone()).await?;
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&node_a(&home)?)).await?;
    send_reports(ch, reports(NODE_A, "i1", 1..=5)).await?;
    let history = home.control().await?.history(NODE_A, 0).await?;
    let stored = stored_seqs(&history);
    assert_eq!(stored, vec![3, 4, 5]);
    assert_eq!(node_status(&home, NODE_A).await?.reports_stored, 3);
    daemon.stop().await?;
    Ok(())
}

/// A daemon whose clock the test moves.
async fn start_with_clock(home: &Home, clock: &TestClock) -> Result<Daemon, BoxError> {
    let mut config = home.config();
    config.clock = clock.daemon_clock();
    Ok(Daemon::start(config, home.pki.clone()).await?)
}

/// Polls `status` until `node` is disconnected (bounded).
async fn wait_disconnected(home: &Home, node: &str) -> Result<(), BoxError> {
    for _ in 0..100 {
        if !node_status(home, node).await?.connected {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{node} still connected after 5 s").into())
}

#[tokio::test]
async fn connected_while_streaming_and_stale_after_three_missed_intervals() -> Result<(), BoxError>
{
    let home = Home::new()?;
    let clock = TestClock::at(SystemTime::now());
    let daemon = start_with_clock(&home, &clock).await?;
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&node_a(&home)?)).await?;
    let (tx, rx) = mpsc::channel(4);
    let mut acks = HostClient::new(ch)
        .report(ReceiverStream::new(rx))
        .await?
        .into_inner();
    tx.send(report(NODE_A, "i1", 1, 1)).await?;
    let ack = acks.message().await?.ok_or("no ack")?;
    assert_eq!(ack.seq, 1);

    let open = node_status(&home, NODE_A).await?;
    assert!(open.connected, "an open report stream counts as connected");
    assert!(!open.stale);
    let never = node_status(&home, NODE_B).await?;
    assert!(!never.connected && !never.stale && never.last_report.is_none());

    drop(tx);
    assert!(
        acks.message().await?.is_none(),
        "the host ends the stream after the node closes"
    );
    wait_disconnected(&home, NODE_A).await?;

    // interval 1 s: stale once more than 3 s have passed since receipt.
    clock.advance(Duration::from_millis(1500));
    assert!(!node_status(&home, NODE_A).await?.stale, "stale too early");
    clock.advance(Duration::from_millis(2000));
    assert!(
        node_status(&home, NODE_A).await?.stale,
        "not stale after 3 intervals"
    );
    daemon.stop().await?;
    Ok(())
}

/// A report dated far in the future (a VM whose clock is off, or a lie)
/// must neither pin itself as the latest report nor freeze the node as
/// stale: staleness is judged by the host's receipt time. The skew is
/// shown as a warning while it lasts.
#[tokio::test]
async fn a_report_dated_in_the_future_does_not_freeze_the_node_and_shows_the_skew()
-> Result<(), BoxError> {
    let home = Home::new()?;
    let clock = TestClock::at(SystemTime::now());
    let daemon = start_with_clock(&home, &clock).await?;
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&node_a(&home)?)).await?;

    let mut future = report(NODE_A, "i1", 1, 10);
    let year_2099 = SystemTime::UNIX_EPOCH + Duration::from_secs(4_070_908_800);
    future.taken_at = Some(proto::timestamp(year_2099));
    send_reports(ch.clone(), vec![future]).await?;
    let skewed = node_status(&home, NODE_A).await?;
    assert!(skewed.clock_skew_seconds > 30 * 365 * 86_400, "{skewed:?}");
    assert!(skewed.clock_warning.contains("ahead of"), "{skewed:?}");

    // 20 s later the node's clock is right again and it reports honestly.
    clock.advance(Duration::from_secs(20));
    let mut honest = report(NODE_A, "i1", 2, 10);
    honest.taken_at = Some(proto::timestamp(clock.now()));
    send_reports(ch, vec![honest]).await?;

    // 25 s after that: within three 10 s intervals of the last receipt,
    // though 45 s after the receipt of the report dated 2099.
    clock.advance(Duration::from_secs(25));
    let status = node_status(&home, NODE_A).await?;
    assert!(
        !status.stale,
        "frozen as stale by a report from 2099: {status:?}"
    );
    assert_eq!(status.last_report.as_ref().map(|r| r.seq), Some(2));
    assert_eq!(status.clock_skew_seconds, 0, "{status:?}");
    assert!(status.clock_warning.is_empty(), "{status:?}");
    let received = status
        .last_report_received_at
        .as_ref()
        .and_then(proto::system_time)
        .ok_or("no receipt time")?;
    assert_eq!(
        proto::timestamp(received),
        proto::timestamp(clock.now() - Duration::from_secs(25))
    );

    // And stale it becomes, by the host's clock, once reports stop.
    clock.advance(Duration::from_secs(6));
    assert!(node_status(&home, NODE_A).await?.stale);
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_store_survives_a_daemon_restart() -> Result<(), BoxError> {
    let home = Home::new()?;
    let creds = node_a(&home)?;
    let daemon = home.start().await?;
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&creds)).await?;
    send_reports(ch, reports(NODE_A, "i1", 1..=3)).await?;
    daemon.stop().await?;
    assert!(
        !home.path().join("daemon.sock").exists(),
        "socket left behind"
    );

    let daemon = home.start().await?;
    let status = node_status(&home, NODE_A).await?;
    assert_eq!(status.last_report.map(|r| r.seq), Some(3));
    assert_eq!(status.reports_stored, 3);
    // The dedup marks survived too: a re-send after the restart is not stored again.
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&creds)).await?;
    let acks = send_reports(ch, reports(NODE_A, "i1", 2..=4)).await?;
    assert_eq!(seqs(&acks), vec![2, 3, 4]);
    assert_eq!(home.control().await?.history(NODE_A, 0).await?.len(), 4);
    daemon.stop().await?;
    Ok(())
}

#[tokio::test]
async fn status_json_has_the_documented_shape() -> Result<(), BoxError> {
    let home = Home::new()?;
    let daemon = home.start().await?;
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&node_a(&home)?)).await?;
    send_reports(ch, reports(NODE_A, "i1", 1..=1)).await?;

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hostctl"))
        .arg("--home")
        .arg(home.path())
        .args(["-o", "json", "status"])
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["daemon"]["host_endpoint"], daemon.host_addr().to_string());
    let clusters: Vec<&str> = v["clusters"]
        .as_array()
        .ok_or("clusters is not an array")?
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(clusters, vec!["app1", "app2"]);
    let a = &v["clusters"][0]["nodes"][0];
    assert_eq!(a["name"], NODE_A);
    assert_eq!(a["connected"], false);
    assert_eq!(a["stale"], false);
    assert_eq!(a["cpu_percent"], 12.5);
    assert_eq!(a["memory_total_bytes"], 4u64 << 30);
    assert_eq!(a["disk_root"]["available_bytes"], 15u64 << 30);
    assert_eq!(a["failing_checks"], serde_json::json!(["kubelet"]));
    assert_eq!(a["reports_stored"], 1);
    assert!(
        a["last_report_age_seconds"]
            .as_f64()
            .is_some_and(|s| s < 60.0)
    );
    assert!(
        a["vm_state"].is_null(),
        "no provider recorded for this home"
    );
    let b = &v["clusters"][1]["nodes"][0];
    assert_eq!(b["name"], NODE_B);
    assert!(b["last_report_at"].is_null() && b["cpu_percent"].is_null());
    daemon.stop().await?;
    Ok(())
}

/// A report over the shared size limit (issue 13, item 8) is acknowledged
/// — the node drops it rather than re-sending it forever — and refused
/// with INVALID_ARGUMENT naming its size and the limit; it is not stored,
/// and the node's next stream carries on from the report after it.
#[tokio::test]
async fn an_oversized_report_is_acknowledged_as_refused_and_the_node_moves_on()
-> Result<(), BoxError> {
    use proto::limits::MAX_REPORT_BYTES;
    let home = Home::new()?;
    let daemon = home.start().await?;
    let ch = host_channel(&home.ca_pem(), daemon.host_addr(), Some(&node_a(&home)?)).await?;
    let mut big = report(NODE_A, "i1", 2, 10);
    big.checks[0].message = "x".repeat(MAX_REPORT_BYTES);
    let sent = vec![
        report(NODE_A, "i1", 1, 10),
        big,
        report(NODE_A, "i1", 3, 10),
    ];
    let mut acks = HostClient::new(ch.clone())
        .report(tokio_stream::iter(sent))
        .await?
        .into_inner();
    assert_eq!(acks.message().await?.map(|a| a.seq), Some(1));
    assert_eq!(
        acks.message().await?.map(|a| a.seq),
        Some(2),
        "the refused report must be acknowledged, or the node re-sends it forever"
    );
    let refused = match acks.message().await {
        Err(status) => status,
        Ok(next) => return Err(format!("stream went on after the refusal: {next:?}").into()),
    };
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused
            .message()
            .contains(&format!("the limit is {MAX_REPORT_BYTES} bytes")),
        "{refused:?}"
    );

    let acks = send_reports(ch, reports(NODE_A, "i1", 3..=3)).await?;
    assert_eq!(seqs(&acks), vec![3]);
    let history = home.control().await?.history(NODE_A, 0).await?;
    let stored = stored_seqs(&history);
    assert_eq!(
        stored,
        vec![1, 3],
        "the oversized report must not be stored"
    );
    daemon.stop().await?;
    Ok(())
}
