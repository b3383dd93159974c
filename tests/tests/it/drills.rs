//! `hostctl verify --drill mgmt-down` end to end on the local provider:
//! real daemon and node agents in namespaces. mgmt's machine is stopped
//! through the provider, app1's agents keep reporting, mgmt is started
//! again, and every app report of the outage is in the host's store in
//! order with none lost — the agent plane's own instance of C1/C2. The
//! result is recorded and shown by `status`; a drill refuses to start from
//! a broken environment, and one that was interrupted is put back by the
//! next run before anything else.

use serde_json::Value;
use tests::LocalEnv;

const NODES: [&str; 3] = ["mgmt-cp", "app1-cp", "app1-worker-0"];
const DEADLINE: (&str, &str) = ("HOSTCTL_DRILL_DEADLINE_SECS", "240");

fn drill(env: &LocalEnv) -> (std::process::Output, Value) {
    let out = env.hostctl_with_env(
        &["-o", "json", "verify", "--drill", "mgmt-down"],
        &[DEADLINE],
    );
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}

fn observation<'a>(report: &'a Value, contract: &str, promise_has: &str) -> &'a Value {
    report["observations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| {
            o["contract"] == contract
                && o["promise"]
                    .as_str()
                    .is_some_and(|p| p.contains(promise_has))
        })
        .unwrap_or_else(|| panic!("no {contract} ({promise_has}) in {report:#}"))
}

#[test]
fn mgmt_down_keeps_app_reports_whole_restores_mgmt_and_is_recorded() {
    if !tests::can_run_netns("drills") {
        return;
    }
    let env = LocalEnv::new(81, &NODES);
    env.up(1);
    let mgmt_supervisor = env.supervisor_pid("mgmt-cp");

    let (out, report) = drill(&env);
    assert!(
        out.status.success(),
        "drill failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["outcome"], "passed", "{report:#}");
    let c1 = observation(&report, "C1", "keep reporting");
    assert_eq!(c1["verdict"], "holds", "{c1:#}");
    assert_eq!(c1["observed"].as_array().map(Vec::len), Some(2), "{c1:#}");
    let plane = observation(&report, "C2", "in order");
    assert_eq!(plane["verdict"], "holds", "{plane:#}");
    for seen in plane["observed"].as_array().expect("observed") {
        assert!(
            seen.as_str()
                .is_some_and(|s| s.contains("stored in order, none dropped")),
            "{plane:#}"
        );
    }
    // Nothing of the platform is built by a nodes-only `up`: said, not faked.
    assert_eq!(
        observation(&report, "C3", "secrets")["verdict"],
        "not-installed"
    );
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(steps[0], "stopping mgmt's machines: mgmt-cp", "{steps:?}");
    assert!(
        steps.contains(&"started mgmt-cp again; their agents are connected"),
        "{steps:?}"
    );

    // mgmt is back (a new supervisor), reporting; the result is recorded
    // (0600) and status says when the contracts were last proven.
    assert_ne!(env.supervisor_pid("mgmt-cp"), mgmt_supervisor);
    let mgmt = env.status_of("mgmt-cp").expect("mgmt-cp in status");
    assert_eq!(mgmt["connected"], true, "{mgmt:#}");
    let record = env.home().join("drills/mgmt-down.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&record).expect("recorded").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let status: Value =
        serde_json::from_str(&env.hostctl_ok(&["status", "-o", "json"])).expect("status json");
    assert_eq!(status["drills"][0]["drill"], "mgmt-down", "{status:#}");
    assert_eq!(status["drills"][0]["outcome"], "passed", "{status:#}");
    let table = env.hostctl_ok(&["status"]);
    assert!(
        table.contains("drill mgmt-down: passed at") && table.contains("proved C1, C2, C3"),
        "{table}"
    );

    // A broken environment is refused before anything is stopped…
    let pid = env.supervisor_pid("mgmt-cp").expect("mgmt-cp supervisor");
    // The supervisor leads a process group with the agent in it.
    rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill mgmt-cp's supervisor and agent");
    tests::poll::until(
        "mgmt-cp to disconnect",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(300),
        || (env.status_of("mgmt-cp")?["connected"] == false).then_some(()),
        || format!("{:#?}", env.status_of("mgmt-cp")),
    );
    let (out, _) = drill(&env);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mgmt-cp is not connected"), "{stderr}");

    // …and a drill that stopped mgmt and was interrupted is put back by
    // the next run, which then runs the drill.
    std::fs::write(
        env.home().join("drills/mgmt-down.running.json"),
        r#"{"stopped_machines": ["mgmt-cp"]}"#,
    )
    .expect("marker");
    let (out, report) = drill(&env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report["steps"][0]
            .as_str()
            .is_some_and(|s| s.contains("an earlier mgmt-down did not finish")),
        "{report:#}"
    );
    assert_eq!(report["outcome"], "passed", "{report:#}");
    assert!(!env.home().join("drills/mgmt-down.running.json").exists());
    env.finish();
}
