//! Waiting for enrolment: a node counts as up once its agent holds a report
//! stream open and its last report is fresh. The mutual-TLS handshake behind
//! that stream is the proof that the machine really runs our agent.

use crate::daemon::ControlClient;
use anyhow::Context as _;
use proto::v1::NodeStatus;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

const POLL: Duration = Duration::from_millis(500);

/// Nodes the daemon has at least one report from.
pub async fn reported_nodes(client: &mut ControlClient) -> anyhow::Result<BTreeSet<String>> {
    let status = client
        .status()
        .await
        .context("asking the daemon for status")?;
    Ok(status
        .nodes
        .into_iter()
        .filter(|n| n.last_report.is_some())
        .filter_map(|n| n.meta.map(|m| m.node))
        .collect())
}

/// True when `status` shows a connected, fresh node whose last report
/// arrived at or after `since` (so a report from before a relaunch does
/// not count).
fn ready(status: &NodeStatus, since: Option<SystemTime>) -> bool {
    let received = status
        .last_report_received_at
        .as_ref()
        .and_then(proto::system_time);
    status.connected
        && !status.stale
        && status.last_report.is_some()
        && since.is_none_or(|since| received.is_some_and(|r| r >= since))
}

/// Polls the daemon until every node in `since` is ready, calling
/// `on_ready` once per node as it gets there. On timeout, names the nodes
/// that never made it and where their logs are.
pub async fn until_reporting(
    mut client: ControlClient,
    since: &BTreeMap<String, Option<SystemTime>>,
    logs: &BTreeMap<String, PathBuf>,
    timeout: Duration,
    on_ready: impl Fn(&str),
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pending: BTreeSet<&String> = since.keys().collect();
    loop {
        let status = client
            .status()
            .await
            .context("asking the daemon for status")?;
        for node in status.nodes {
            let Some(name) = node.meta.as_ref().map(|m| m.node.clone()) else {
                continue;
            };
            if let Some(key) = pending.iter().find(|n| ***n == name).copied()
                && ready(&node, since.get(key).copied().flatten())
            {
                pending.remove(key);
                on_ready(key);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> = pending
                .iter()
                .map(|n| match logs.get(*n) {
                    Some(dir) => format!("{n} (logs: {})", dir.display()),
                    None => (*n).clone(),
                })
                .collect();
            anyhow::bail!(
                "{} node(s) did not enrol and report within {} s:\n  {}\n\
                 check the node agent and supervisor logs named above, and `hostctl status`",
                missing.len(),
                timeout.as_secs(),
                missing.join("\n  ")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::v1::HealthReport;

    fn status(connected: bool, stale: bool, at: Option<SystemTime>) -> NodeStatus {
        NodeStatus {
            connected,
            stale,
            last_report: at.map(|_| HealthReport::default()),
            last_report_received_at: at.map(proto::Timestamp::from),
            ..NodeStatus::default()
        }
    }

    #[test]
    fn only_connected_fresh_and_recent_reports_count() {
        let t0 = SystemTime::now();
        let later = t0 + Duration::from_secs(5);
        assert!(ready(&status(true, false, Some(t0)), None));
        assert!(ready(&status(true, false, Some(later)), Some(t0)));
        assert!(!ready(&status(true, false, Some(t0)), Some(later)));
        assert!(!ready(&status(false, false, Some(t0)), None));
        assert!(!ready(&status(true, true, Some(t0)), None));
        assert!(!ready(&status(true, false, None), None));
    }
}
