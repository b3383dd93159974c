//! The `mgmt-down` drill (C1, C2, C3): mgmt's machines are stopped through
//! the provider; while they are down, every app node's agent must keep
//! reporting, and where `up` built the app clusters their synced secrets
//! must stay and their Prometheus agents must buffer; mgmt is started
//! again, and afterwards every app report of the outage must be in the
//! host's store in order with none lost, and the agents' remote write must
//! have caught up, and Alloy must have sent logs since, dropping none.
//!
//! In hostctl the agent plane does not pass through mgmt (the daemon runs
//! on the host), so its instance of C1 is that app agents' report streams
//! go on unbroken — consecutive `seq` within one agent instance, nothing
//! counted as dropped — while mgmt's agents are gone.

use super::env::{DrillEnv, node};
use super::gateway::{self, Target};
use super::record::{DrillStore, Running};
use super::{DrillError, DrillName, DrillReport, Observation, Pace, Started, until};
use crate::addons::observability::prometheus::AGENT;
use crate::addons::observability::shipping::{MetricsShipping, agent_shipping};
use crate::verify::Verdict;
use std::collections::BTreeMap;

const C1: &str = "app workloads keep running while mgmt is down: app agents keep reporting";
const C1_SERVING: &str = "app workloads keep serving through their Gateways while mgmt is down";
const C2_PLANE: &str =
    "nothing is lost while mgmt is down: every app report of the outage arrives, in order";
const C2_METRICS: &str =
    "the app clusters' Prometheus agents buffer while mgmt is down and catch up after";
const C3: &str = "synced secrets stay while mgmt (and its Vault) is down";

/// Where an app node's report stream stood before the outage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mark {
    instance: String,
    seq: u64,
}

/// Runs the drill; mgmt's machines are started again whatever happens.
pub async fn run(
    env: &mut DrillEnv<'_>,
    store: &DrillStore,
    pace: Pace,
) -> Result<DrillReport, DrillError> {
    let started = Started::now();
    let mut steps = Vec::new();
    super::restore(env, store, DrillName::MgmtDown, pace, &mut steps).await?;
    let (mgmt, app) = (env.nodes_where(true), env.nodes_where(false));
    if mgmt.is_empty() || app.is_empty() {
        return Err(DrillError::Precondition(
            "mgmt-down needs a mgmt cluster and at least one app cluster in the topology".into(),
        ));
    }
    let nodes = env.nodes().await?;
    for name in mgmt.iter().chain(&app) {
        if !node(&nodes, name).is_some_and(|n| n.connected) {
            return Err(DrillError::Precondition(format!(
                "{name} is not connected: a drill starts from a healthy environment (see `hostctl status`; `hostctl up` repairs it)"
            )));
        }
    }
    let mut marks = BTreeMap::new();
    for name in &app {
        marks.insert(name.clone(), newest(env, name).await?);
    }
    let before = shipping(env).await;
    let logs_before = super::logs::figures(env).await;
    let doors = front_doors(env).await;

    store.mark_running(
        DrillName::MgmtDown,
        &Running {
            stopped_machines: mgmt.clone(),
            ..Running::default()
        },
    )?;
    steps.push(format!("stopping mgmt's machines: {}", mgmt.join(", ")));
    let during = outage(env, &mgmt, &marks, &before, pace, &mut steps).await;
    let during = match during {
        Ok(mut o) => {
            o.push(still_serving(&doors).await);
            Ok(o)
        }
        Err(e) => Err(e),
    };
    // Put mgmt back before judging anything, even when the outage failed.
    super::start_machines(env, &mgmt, pace, &mut steps).await?;
    store.clear_running(DrillName::MgmtDown)?;
    let mut observations = during?;
    observations.push(reports_complete(env, &marks).await?);
    observations.extend(caught_up(env, &before, pace, &mut steps).await);
    observations.push(super::logs::judge(
        &logs_before,
        &super::logs::figures(env).await,
    ));
    Ok(started.report(DrillName::MgmtDown, steps, observations))
}

/// The newest report the host holds for `name`.
async fn newest(env: &mut DrillEnv<'_>, name: &str) -> Result<Mark, DrillError> {
    let last = env.daemon.history(name, 1).await?;
    let report = last.last().and_then(|r| r.report.as_ref()).ok_or_else(|| {
        DrillError::Precondition(format!(
            "{name} has not reported yet: wait for its first report"
        ))
    })?;
    Ok(Mark {
        instance: report.agent_instance.clone(),
        seq: report.seq,
    })
}

/// Stops mgmt and observes the app side while it is down.
async fn outage(
    env: &mut DrillEnv<'_>,
    mgmt: &[String],
    marks: &BTreeMap<String, Mark>,
    before: &BTreeMap<String, Result<MetricsShipping, String>>,
    pace: Pace,
    steps: &mut Vec<String>,
) -> Result<Vec<Observation>, DrillError> {
    for name in mgmt {
        env.provider.stop(name).await?;
    }
    let gone = until(pace, || async {
        let nodes = env.daemon.clone().status().await.ok()?.nodes;
        mgmt.iter()
            .all(|m| node(&nodes, m).is_none_or(|n| !n.connected))
            .then_some(())
    })
    .await;
    if gone.is_none() {
        return Err(DrillError::Precondition(format!(
            "mgmt's agents still connected {} s after their machines were stopped",
            pace.deadline.as_secs()
        )));
    }
    steps.push("mgmt's agents are disconnected".into());

    let want = pace.outage_reports;
    let kept = until(pace, || async {
        let nodes = env.daemon.clone().status().await.ok()?.nodes;
        marks
            .iter()
            .all(|(name, mark)| {
                node(&nodes, name)
                    .and_then(|n| n.last_report.as_ref())
                    .is_some_and(|r| r.agent_instance == mark.instance && r.seq >= mark.seq + want)
            })
            .then_some(nodes)
    })
    .await;
    let nodes = match kept {
        Some(nodes) => nodes,
        None => env.nodes().await?,
    };
    let mut broken = Vec::new();
    let mut held = Vec::new();
    for (name, mark) in marks {
        let last = node(&nodes, name).and_then(|n| n.last_report.as_ref());
        match last {
            Some(r) if r.agent_instance == mark.instance && r.seq >= mark.seq + want => {
                held.push(format!(
                    "{name}: reports {}..={} while mgmt was down",
                    mark.seq + 1,
                    r.seq
                ))
            }
            Some(r) if r.agent_instance != mark.instance => {
                broken.push(format!("{name}: its agent restarted during the outage"))
            }
            Some(r) => broken.push(format!(
                "{name}: {} report(s) in {} s while mgmt was down, {want} expected",
                r.seq - mark.seq,
                pace.deadline.as_secs()
            )),
            None => broken.push(format!("{name}: no report")),
        }
    }
    let mut observations = vec![judged("C1", C1, broken, held)];
    observations.push(super::secrets_synced(env, true, C3).await);
    observations.extend(buffering(env, before).await);
    steps.push("observed the app clusters while mgmt was down".into());
    Ok(observations)
}

fn judged(contract: &str, promise: &str, broken: Vec<String>, held: Vec<String>) -> Observation {
    match broken.is_empty() {
        true => Observation::new(contract, promise, Verdict::Holds, held),
        false => Observation::new(contract, promise, Verdict::Broken, broken),
    }
}

/// Every app cluster's Gateway targets that serve before the outage.
async fn front_doors(env: &DrillEnv<'_>) -> Result<Vec<(String, Target)>, String> {
    let mut out = Vec::new();
    for (name, client) in env.clusters(true).await {
        let client = client.map_err(|e| format!("{name}: API server: {e}"))?;
        for t in gateway::cluster_targets(&client)
            .await
            .map_err(|e| format!("{name}: {e}"))?
        {
            if gateway::serving(&gateway::probe(&t).await) {
                out.push((name.clone(), t));
            }
        }
    }
    Ok(out)
}

/// C1 from outside: what served before still serves.
async fn still_serving(doors: &Result<Vec<(String, Target)>, String>) -> Observation {
    let doors = match doors {
        Ok(d) if d.is_empty() => {
            return Observation::new(
                "C1",
                C1_SERVING,
                Verdict::NotInstalled,
                vec!["no app cluster has a Gateway serving HTTP to probe".into()],
            );
        }
        Ok(d) => d,
        Err(e) => return Observation::new("C1", C1_SERVING, Verdict::CannotTell, vec![e.clone()]),
    };
    let mut broken = Vec::new();
    let mut held = Vec::new();
    for (cluster, t) in doors {
        let answer = gateway::probe(t).await;
        let line = format!("{cluster}: Gateway {} at {}", t.gateway, t.authority);
        match answer {
            Ok(code) if code < 500 => held.push(format!("{line} answered {code}")),
            Ok(code) => broken.push(format!("{line} answered {code}")),
            Err(e) => broken.push(format!("{line}: {e}")),
        }
    }
    judged("C1", C1_SERVING, broken, held)
}

/// Each app cluster's agent figures, where `up` installed the agent.
async fn shipping(env: &DrillEnv<'_>) -> BTreeMap<String, Result<MetricsShipping, String>> {
    let mut out = BTreeMap::new();
    for (name, client) in env.clusters(true).await {
        if !env.state.addon_done(&name, AGENT.name) {
            continue;
        }
        let figures = match client {
            Ok(c) => agent_shipping(&c).await,
            Err(e) => Err(e),
        };
        out.insert(name, figures);
    }
    out
}

/// While mgmt is down: the agents are behind, and lose nothing.
async fn buffering(
    env: &DrillEnv<'_>,
    before: &BTreeMap<String, Result<MetricsShipping, String>>,
) -> Vec<Observation> {
    if before.is_empty() {
        return vec![Observation::new(
            "C2",
            C2_METRICS,
            Verdict::NotInstalled,
            vec!["no Prometheus agent installed on an app cluster".into()],
        )];
    }
    let now = shipping(env).await;
    let mut broken = Vec::new();
    let mut held = Vec::new();
    for (name, was) in before {
        match (was, now.get(name)) {
            (Ok(was), Some(Ok(m))) if m.failed_samples > was.failed_samples => {
                broken.push(format!(
                    "{name}: {} samples failed while mgmt was down",
                    m.failed_samples - was.failed_samples
                ))
            }
            (Ok(_), Some(Ok(m))) => held.push(format!(
                "{name}: remote write {} s behind while mgmt was down (the WAL keeps {} s)",
                m.backlog_seconds.unwrap_or(0.0) as u64,
                m.wal_keeps_seconds
            )),
            (_, Some(Err(e))) | (Err(e), _) => broken.push(format!("{name}: {e}")),
            (_, None) => broken.push(format!("{name}: the agent did not answer")),
        }
    }
    vec![judged("C2", C2_METRICS, broken, held)]
}

/// After mgmt is back: the agents' backlog is within what it was before.
async fn caught_up(
    env: &DrillEnv<'_>,
    before: &BTreeMap<String, Result<MetricsShipping, String>>,
    pace: Pace,
    steps: &mut Vec<String>,
) -> Option<Observation> {
    if before.is_empty() {
        return None;
    }
    // Caught up: no further behind than before the outage, plus a minute.
    let behind = |m: &MetricsShipping| m.backlog_seconds.unwrap_or(0.0);
    let limit = |name: &String| {
        before
            .get(name)
            .and_then(|b| b.as_ref().ok())
            .map_or(60.0, |b| behind(b) + 60.0)
    };
    let last = until(pace, || async {
        let now = shipping(env).await;
        now.iter()
            .all(|(name, m)| m.as_ref().is_ok_and(|m| behind(m) <= limit(name)))
            .then_some(now)
    })
    .await;
    let now = match last {
        Some(now) => now,
        None => shipping(env).await,
    };
    steps.push("waited for the app agents' remote write to catch up".into());
    let mut broken = Vec::new();
    let mut held = Vec::new();
    for (name, m) in &now {
        match m {
            Ok(m) if behind(m) <= limit(name) => {
                held.push(format!("{name}: caught up, {} s behind", behind(m) as u64))
            }
            Ok(m) => broken.push(format!(
                "{name}: still {} s behind after {} s",
                behind(m) as u64,
                pace.deadline.as_secs()
            )),
            Err(e) => broken.push(format!("{name}: {e}")),
        }
    }
    Some(judged("C2", C2_METRICS, broken, held))
}

/// Every app node's reports from its mark on: one agent instance,
/// consecutive `seq`, nothing dropped.
async fn reports_complete(
    env: &mut DrillEnv<'_>,
    marks: &BTreeMap<String, Mark>,
) -> Result<Observation, DrillError> {
    let mut broken = Vec::new();
    let mut held = Vec::new();
    for (name, mark) in marks {
        let history = env.daemon.history(name, 0).await?;
        let after: Vec<_> = history
            .iter()
            .filter_map(|s| s.report.as_ref())
            .filter(|r| r.agent_instance == mark.instance && r.seq > mark.seq)
            .collect();
        let seqs: Vec<u64> = after.iter().map(|r| r.seq).collect();
        let dropped: u64 = after.iter().map(|r| r.dropped).sum();
        match gap(mark.seq, &seqs) {
            None if dropped == 0 && !seqs.is_empty() => held.push(format!(
                "{name}: seq {}..={} stored in order, none dropped",
                mark.seq + 1,
                seqs[seqs.len() - 1]
            )),
            None if seqs.is_empty() => {
                broken.push(format!("{name}: no report after the drill began"))
            }
            None => broken.push(format!("{name}: the agent dropped {dropped} report(s)")),
            Some(why) => broken.push(format!("{name}: {why}")),
        }
    }
    Ok(judged("C2", C2_PLANE, broken, held))
}

/// Why `seqs` (as stored) is not `from + 1, from + 2, …`.
fn gap(from: u64, seqs: &[u64]) -> Option<String> {
    (from + 1..)
        .zip(seqs)
        .find_map(|(expected, &seq)| match seq {
            _ if seq == expected => None,
            _ if seq > expected => Some(format!("reports {expected}..={} are missing", seq - 1)),
            _ => Some(format!("report {seq} is stored after {}", expected - 1)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_or_a_reorder_in_the_stored_reports_is_named() {
        assert_eq!(gap(10, &[11, 12, 13]), None);
        assert_eq!(gap(10, &[]), None);
        assert_eq!(
            gap(10, &[11, 14]).as_deref(),
            Some("reports 12..=13 are missing")
        );
        assert_eq!(
            gap(10, &[11, 13, 12]).as_deref(),
            Some("reports 12..=12 are missing")
        );
        assert_eq!(
            gap(10, &[11, 11]).as_deref(),
            Some("report 11 is stored after 11")
        );
    }
}
