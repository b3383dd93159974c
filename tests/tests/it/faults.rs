//! Real faults against a running local environment (interval 1 s):
//! - the daemon stops for 30 s: every report of the gap is back-filled,
//!   none stored twice;
//! - a node's link goes down: stale within three intervals, fresh again
//!   once the link is back;
//! - a node agent is killed: its supervisor restarts it (as systemd would)
//!   and it reports again with its stored certificate, no new token;
//! - a node agent loses its certificate and can only offer its spent
//!   token: the host refuses it, `status` says so, and `up` fails at once
//!   naming the refusal instead of waiting out its enrolment timeout.
//!
//! Each test has its own home and node network, so they run side by side.

use proto::v1::StoredReport;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use tests::LocalEnv;

const NODE: &str = "app1-cp";
const INTERVAL: u32 = 1;
const GAP: Duration = Duration::from_secs(30);

fn taken_at(r: &StoredReport) -> Option<SystemTime> {
    r.report
        .as_ref()
        .and_then(|h| h.taken_at.as_ref())
        .and_then(proto::system_time)
}

fn instance_and_seq(r: &StoredReport) -> (String, u64) {
    r.report
        .as_ref()
        .map(|h| (h.agent_instance.clone(), h.seq))
        .unwrap_or_default()
}

#[test]
fn daemon_gap_is_backfilled_without_duplicates() {
    if !tests::can_run_netns("daemon_gap_is_backfilled_without_duplicates") {
        return;
    }
    let env = LocalEnv::new(2, &[NODE]);
    env.up(INTERVAL);
    env.wait_status(NODE, "fresh", Duration::from_secs(10), |n| {
        LocalEnv::is_fresh(n, 3.0)
    });

    env.stop_daemon();
    let stopped = SystemTime::now();
    std::thread::sleep(GAP);
    let restarted = SystemTime::now();
    // `up` restarts the daemon, finds the node in place and waits for it.
    let out = env.up(INTERVAL);
    // The summary's LAUNCH cell is `ok` ("already done"): the machine was
    // found running, not launched again.
    let header: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("NODE"))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with(NODE))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let launch = header.iter().position(|h| *h == "LAUNCH");
    assert_eq!(launch.and_then(|i| row.get(i)), Some(&"ok"), "{out}");

    // Wait until live reports (taken after the restart) are stored: by then
    // the buffer of the gap has been sent.
    let history = tests::poll::until(
        "reports taken after the daemon restart",
        Duration::from_secs(20),
        Duration::from_millis(250),
        || {
            let h = env.history(NODE);
            h.iter()
                .any(|r| taken_at(r).is_some_and(|t| t > restarted + Duration::from_secs(2)))
                .then_some(h)
        },
        || format!("{} reports stored", env.history(NODE).len()),
    );

    let keys: Vec<(String, u64)> = history.iter().map(instance_and_seq).collect();
    let unique: BTreeSet<&(String, u64)> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a report was stored twice");
    let instances: BTreeSet<&str> = keys.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(instances.len(), 1, "the agent restarted: {instances:?}");
    let seqs: Vec<u64> = keys.iter().map(|(_, s)| *s).collect();
    let (first, last) = (seqs.iter().min().copied(), seqs.iter().max().copied());
    let span = last.unwrap_or(0) - first.unwrap_or(0) + 1;
    assert_eq!(
        span as usize,
        seqs.len(),
        "reports missing between seq {first:?} and {last:?}"
    );
    let in_gap = history
        .iter()
        .filter(|r| taken_at(r).is_some_and(|t| t > stopped && t < restarted))
        .count();
    // 30 s at 1 s ± 10 % jitter.
    assert!(
        in_gap >= 25,
        "only {in_gap} reports taken during the 30 s gap"
    );
    let dropped: u64 = history
        .iter()
        .filter_map(|r| r.report.as_ref().map(|h| h.dropped))
        .sum();
    assert_eq!(
        dropped, 0,
        "the node dropped reports within its buffer bound"
    );
    eprintln!("gap: {in_gap} reports back-filled, seq {first:?}..={last:?}, none twice");
    env.finish();
}

#[test]
fn link_down_goes_stale_and_recovers() {
    if !tests::can_run_netns("link_down_goes_stale_and_recovers") {
        return;
    }
    let env = LocalEnv::new(3, &[NODE]);
    env.up(INTERVAL);
    env.wait_status(NODE, "fresh", Duration::from_secs(10), |n| {
        LocalEnv::is_fresh(n, 3.0)
    });
    let veth = env.host_veth(NODE);

    set_link(&veth, "down");
    let cut = Instant::now();
    // Stale means no report for three intervals; allow the polling and
    // jitter (+10 %) on top.
    let limit = Duration::from_secs_f64(3.0 * f64::from(INTERVAL) * 1.1 + 1.5);
    env.wait_status(NODE, "stale after the link went down", limit, |n| {
        n["stale"] == true
    });
    eprintln!("stale {:.1} s after link down", cut.elapsed().as_secs_f64());

    set_link(&veth, "up");
    let back = Instant::now();
    env.wait_status(
        NODE,
        "fresh after the link came back",
        Duration::from_secs(30),
        |n| LocalEnv::is_fresh(n, 2.0),
    );
    eprintln!("fresh {:.1} s after link up", back.elapsed().as_secs_f64());
    env.finish();
}

#[test]
fn killed_agent_restarts_without_a_new_token() {
    if !tests::can_run_netns("killed_agent_restarts_without_a_new_token") {
        return;
    }
    let env = LocalEnv::new(4, &[NODE]);
    env.up(INTERVAL);
    env.wait_status(NODE, "fresh", Duration::from_secs(10), |n| {
        LocalEnv::is_fresh(n, 3.0)
    });
    let instance = |env: &LocalEnv| env.history(NODE).last().map(|r| instance_and_seq(r).0);
    let before = instance(&env).expect("a report before the kill");
    let supervisor = env.supervisor_pid(NODE).expect("supervisor pid");
    let agent = env.agent_pid(NODE).expect("agent pid");

    let status = Command::new("kill")
        .args(["-KILL", &agent.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let killed = Instant::now();

    // A new agent process, reporting under a new instance id.
    tests::poll::until(
        "reports from a restarted agent",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || instance(&env).filter(|i| *i != before),
        || {
            std::fs::read_to_string(
                env.node_dir(NODE)
                    .join("root/var/log/hostctl/supervisor.log"),
            )
            .unwrap_or_default()
        },
    );
    env.wait_status(
        NODE,
        "fresh after the restart",
        Duration::from_secs(10),
        |n| LocalEnv::is_fresh(n, 2.0),
    );
    eprintln!(
        "reporting again {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    assert_ne!(env.agent_pid(NODE), Some(agent), "no new agent process");
    assert_eq!(
        env.supervisor_pid(NODE),
        Some(supervisor),
        "the supervisor itself restarted"
    );

    // Exactly one token was ever issued for the node, and it is spent: the
    // new process got in with the certificate it stored at enrolment.
    let tokens: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.home().join("pki/agent/tokens.json")).expect("token store"),
    )
    .expect("token store is JSON");
    let issued: Vec<&serde_json::Value> = tokens["tokens"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|t| t["node"] == NODE)
        .collect();
    assert_eq!(issued.len(), 1, "tokens issued for {NODE}: {issued:?}");
    assert!(
        !issued[0]["used_at"].is_null(),
        "the only token was never used"
    );
    env.finish();
}

fn set_link(link: &str, state: &str) {
    let ok = Command::new("ip")
        .args(["link", "set", link, state])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip link set {link} {state} failed");
}

#[test]
fn a_refused_node_fails_up_at_once_naming_the_refusal() {
    if !tests::can_run_netns("a_refused_node_fails_up_at_once_naming_the_refusal") {
        return;
    }
    let env = LocalEnv::new(5, &[NODE]);
    env.up(INTERVAL);
    // The agent forgets its identity; its config still holds the token it
    // enrolled with, which the host has spent.
    let state = env.node_dir(NODE).join("root/var/lib/hostctl-agent");
    std::fs::remove_file(state.join("cert.pem")).expect("remove the agent's certificate");
    let agent = env.agent_pid(NODE).expect("agent pid");
    assert!(
        Command::new("kill")
            .args(["-KILL", &agent.to_string()])
            .status()
            .expect("kill")
            .success()
    );
    env.wait_status(
        NODE,
        "the refusal of the restarted agent",
        Duration::from_secs(30),
        |n| !n["enrolment_refused"].is_null() && !n["connected"].as_bool().unwrap_or(true),
    );

    // A timeout far beyond the test's own duration: only the refusal can
    // end this wait in time, and the message says which ended it.
    let args = LocalEnv::up_args(INTERVAL, 900);
    let up = env.hostctl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&up.stderr).into_owned();
    assert!(!up.status.success(), "up must fail:\n{err}");
    for expected in [
        format!("{NODE}: the host refused its enrolment"),
        "enrolment token".to_owned(),
        "hostctl down".to_owned(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(
        !err.contains("did not enrol and report within"),
        "the refusal must end the wait, not the timeout:\n{err}"
    );
    let table = env.hostctl_ok(&["status"]);
    assert!(
        table.contains("refused"),
        "status does not show the refusal:\n{table}"
    );
    env.finish();
}
