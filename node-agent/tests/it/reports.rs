//! Health reports against the harness host: ordering, back-fill after an
//! outage with original timestamps, drop accounting on overflow, and the
//! host's size limit (issue 13, item 12).

use test_support::node_harness as harness;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use harness::proxy::Proxy;
use harness::{Harness, TestResult, seqs};
use node_agent::agent;
use node_agent::backoff::Backoff;
use node_agent::config::Config;
use node_agent::report::{Outbox, sender, size};
use prost::Message as _;
use proto::limits::MAX_REPORT_BYTES;
use proto::v1::{Check, CheckStatus, HealthReport};

/// Runs an agent in this process until the returned handle is aborted.
async fn run_agent(config: Config) -> TestResult<tokio::task::JoinHandle<()>> {
    let started = agent::start(config).await?;
    Ok(tokio::spawn(async move {
        let _ = started.run(std::future::pending()).await;
    }))
}

fn taken_at(r: &HealthReport) -> SystemTime {
    r.taken_at
        .as_ref()
        .and_then(proto::system_time)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

#[tokio::test]
async fn reports_arrive_in_order_with_increasing_seq() -> TestResult {
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    let agent = run_agent(h.enrolling_config("n1", root.path())?).await?;
    let stored = h
        .host
        .wait_for(Duration::from_secs(20), "3 reports", |r| r.len() >= 3)
        .await?;
    agent.abort();

    assert_eq!(seqs(&stored[..3]), [1, 2, 3]);
    let first = &stored[0];
    assert_eq!(first.node, "n1");
    assert_eq!(first.interval_seconds, 1);
    assert!(!first.agent_instance.is_empty());
    assert!(
        stored
            .iter()
            .all(|r| r.agent_instance == first.agent_instance)
    );
    assert!(
        taken_at(&stored[0]) < taken_at(&stored[1]) && taken_at(&stored[1]) < taken_at(&stored[2])
    );
    let system = first.system.clone().unwrap_or_default();
    assert!(system.memory_total_bytes > 0 && system.cpus > 0);
    let root_disk = system
        .disks
        .iter()
        .find(|d| d.path == "/")
        .ok_or("no / disk")?;
    assert!(root_disk.present && root_disk.total_bytes > 0);
    let etcd_disk = system
        .disks
        .iter()
        .find(|d| d.path == "/var/lib/etcd")
        .ok_or("no etcd disk")?;
    assert!(!etcd_disk.present, "the empty root has no /var/lib/etcd");
    let cni = first
        .checks
        .iter()
        .find(|c| c.name == "cni")
        .ok_or("no cni check")?;
    assert_eq!(cni.status, CheckStatus::NotApplicable as i32);
    assert_eq!(cni.message, "no CNI yet");
    println!(
        "report taken by the collector on this machine (worker, fresh root): {} bytes encoded, limit {MAX_REPORT_BYTES}",
        first.encoded_len()
    );
    Ok(())
}

/// Runs an agent reporting through a proxy, cuts the proxy for `outage`,
/// restores it, and returns (stored, raw, outage start, outage end) once the
/// host has caught up.
async fn outage(
    capacity: usize,
    outage: Duration,
) -> TestResult<(Vec<HealthReport>, Vec<HealthReport>, SystemTime, SystemTime)> {
    let h = Harness::start().await?;
    let proxy = Proxy::start(h.host.host_addr).await?;
    let root = tempfile::tempdir()?;
    let mut config = h.enrolling_config("n1", root.path())?;
    // Enrolment goes straight to the host; reports go through the proxy.
    config.host.endpoint = proxy.addr.to_string();
    config.buffer_capacity = capacity;
    let agent = run_agent(config).await?;
    h.host
        .wait_for(Duration::from_secs(20), "2 reports", |r| r.len() >= 2)
        .await?;

    proxy.down();
    let down_at = SystemTime::now();
    tokio::time::sleep(outage).await;
    let up_at = SystemTime::now();
    proxy.up().await?;
    // Caught up: something taken after the outage has been stored.
    let stored = h
        .host
        .wait_for(Duration::from_secs(60), "back-fill", |r| {
            r.iter().any(|x| taken_at(x) > up_at)
        })
        .await?;
    agent.abort();
    Ok((stored, h.host.raw(), down_at, up_at))
}

#[tokio::test]
async fn reports_taken_during_an_outage_are_back_filled_in_order_with_original_timestamps()
-> TestResult {
    let (stored, raw, down_at, up_at) = outage(1000, Duration::from_millis(4500)).await?;
    let s = seqs(&stored);
    let expected: Vec<u64> = (1..=s.len() as u64).collect();
    assert_eq!(s, expected, "every report stored once, in order");
    assert!(stored.windows(2).all(|w| taken_at(&w[0]) < taken_at(&w[1])));
    let during = stored
        .iter()
        .filter(|r| taken_at(r) > down_at && taken_at(r) < up_at)
        .count();
    assert!(
        during >= 3,
        "only {during} reports were taken during the outage"
    );
    assert!(stored.iter().all(|r| r.dropped == 0));
    // Only a report in flight when the link was cut may arrive twice.
    let mut copies: HashMap<u64, usize> = HashMap::new();
    raw.iter()
        .for_each(|r| *copies.entry(r.seq).or_default() += 1);
    let resent = copies.values().filter(|&&n| n > 1).count();
    assert!(resent <= 1, "{resent} reports were sent more than once");
    Ok(())
}

#[tokio::test]
async fn overflow_drops_the_oldest_and_reports_how_many() -> TestResult {
    let (stored, _, _, _) = outage(2, Duration::from_millis(5500)).await?;
    let s = seqs(&stored);
    assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    let last = s.last().copied().ok_or("nothing stored")?;
    let missing = last - s.len() as u64;
    assert!(missing >= 2, "expected drops with a 2-report buffer: {s:?}");
    let reported: u64 = stored.iter().map(|r| r.dropped).sum();
    assert_eq!(
        reported, missing,
        "dropped counts must add up to the gap: {s:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_oversize_check_output_is_trimmed_to_the_limit_and_says_so() -> TestResult {
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    // cloud-init's result lists every error; its check joins them all.
    let errors: Vec<String> = (0..1024)
        .map(|i| format!("error {i}: {}", "x".repeat(1024)))
        .collect();
    let result = root.path().join("run/cloud-init/result.json");
    std::fs::create_dir_all(result.parent().ok_or("no parent")?)?;
    std::fs::write(
        &result,
        serde_json::json!({ "v1": { "errors": errors } }).to_string(),
    )?;
    let agent = run_agent(h.enrolling_config("n1", root.path())?).await?;
    let stored = h
        .host
        .wait_for(Duration::from_secs(20), "2 reports", |r| r.len() >= 2)
        .await?;
    agent.abort();

    let sizes: Vec<usize> = h.host.raw().iter().map(|r| r.encoded_len()).collect();
    println!("reports with a 1 MiB cloud-init check, as sent: {sizes:?} bytes");
    assert!(sizes.iter().all(|&n| n <= MAX_REPORT_BYTES), "{sizes:?}");
    assert_eq!(seqs(&stored[..2]), [1, 2], "nothing dropped");
    let check = |name: &str| {
        stored[0]
            .checks
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .ok_or(format!("no {name} check"))
    };
    let cloud_init = check("cloud-init")?;
    assert_eq!(cloud_init.status, CheckStatus::Fail as i32);
    assert!(cloud_init.message.starts_with("error 0: xxx"));
    assert!(cloud_init.message.len() <= size::MAX_CHECK_MESSAGE_BYTES);
    assert!(
        cloud_init
            .message
            .contains("[truncated by node-agent from "),
        "{}",
        cloud_init.message
    );
    let marker = check(size::SIZE_CHECK)?;
    assert_eq!(marker.status, CheckStatus::Warn as i32);
    assert!(
        marker
            .message
            .contains(&format!("limit of {MAX_REPORT_BYTES}")),
        "{}",
        marker.message
    );
    Ok(())
}

#[tokio::test]
async fn a_report_that_cannot_be_trimmed_is_dropped_and_the_next_is_sent() -> TestResult {
    let h = Harness::start().await?;
    let instance = "size-test".to_owned();
    let base = HealthReport {
        agent_instance: instance.clone(),
        node: "n1".into(),
        taken_at: Some(proto::timestamp(SystemTime::now())),
        ..Default::default()
    };
    // Check names are never cut: 2000 of 60 bytes are over the limit
    // whatever trimming does.
    let huge = HealthReport {
        seq: 1,
        checks: (0..2000)
            .map(|i| Check {
                name: format!("{i:0>60}"),
                ..Default::default()
            })
            .collect(),
        ..base.clone()
    };
    assert!(huge.encoded_len() > MAX_REPORT_BYTES);
    let outbox = Outbox::new(10);
    outbox.push(huge);
    outbox.push(HealthReport {
        seq: 2,
        ..base.clone()
    });

    let link = h.pki.link("n1", &h.host.host_addr.to_string())?;
    let sending = outbox.clone();
    let stream = tokio::spawn(async move {
        sender::stream_once(&link, &sending, &instance, &mut Backoff::standard()).await
    });
    let stored = h
        .host
        .wait_for(Duration::from_secs(20), "report 2", |r| {
            r.iter().any(|x| x.seq == 2)
        })
        .await;
    // The acknowledgement empties the outbox: nothing is left to re-send.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !outbox.after(0).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stream.abort();
    let stored = stored?;

    assert_eq!(
        seqs(&h.host.raw()),
        [2],
        "the oversize report is never sent"
    );
    assert_eq!(
        (stored[0].dropped, stored[0].dropped_oversize),
        (1, 1),
        "the next report counts it"
    );
    assert!(outbox.after(0).is_empty(), "the outbox still holds reports");
    Ok(())
}
