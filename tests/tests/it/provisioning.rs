//! `hostctl up` as a graph, end to end with the local provider: six nodes
//! through render → launch → enrol → prerequisites (recorded, never run on
//! this machine); killed mid-run and rerun without any duplicate launch; one
//! node whose launch fails for a real `ip` cause while the others complete,
//! then a rerun after the cause is removed. Needs root and `ip` (else SKIP).

use host_agent::orchestrator::{STATE_FILE, StepId, StepKind, StepStatus, UpState};
use host_agent::state_file::StateDocument as _;
use std::process::{Command, Stdio};
use std::time::Duration;
use tests::{LocalEnv, poll};

const SIX: &[&str] = &[
    "mgmt-cp",
    "mgmt-worker-0",
    "app1-cp",
    "app1-worker-0",
    "app2-cp",
    "app2-worker-0",
];

/// The prerequisite step must only ever be recorded on the local provider;
/// until the host renders `commandRunner: record` for local nodes, the
/// agent would run apt on this machine, so the suite refuses to start.
fn prerequisites_are_recorded(test: &str) -> bool {
    use host_agent::provider::Provider;
    let scratch = std::env::temp_dir().join("hostctl-provisioning-guard");
    let local = host_agent::provider::local::LocalProvider::new(&scratch, Default::default());
    let layout = local.agent_layout("n");
    let yaml =
        host_agent::node_config::NodeAgentConfig::new(host_agent::node_config::NodeConfigInput {
            node: "n",
            cluster: "c",
            control_plane: false,
            node_address: [10, 0, 0, 2].into(),
            host_address: [10, 0, 0, 1].into(),
            host_port: 7443,
            ca_pem: "x",
            token: None,
            report_interval_seconds: 1,
            buffer_capacity: 1,
            layout: &layout,
        })
        .to_yaml()
        .unwrap_or_default();
    yaml.contains("commandRunner: record")
        || tests::skip(
            test,
            "local node configs do not yet select the recording command runner",
        )
}

fn up_args() -> Vec<&'static str> {
    vec![
        "up",
        "--nodes-only",
        "--provider",
        "local",
        "--report-interval",
        "1",
        "--timeout",
        "90",
    ]
}

fn state(env: &LocalEnv) -> UpState {
    UpState::load(&env.home().join(STATE_FILE)).expect("up state")
}

fn assert_prepared(env: &LocalEnv, node: &str) {
    let log = env
        .node_dir(node)
        .join("root/var/log/hostctl/commands.jsonl");
    let text = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("{node}: no recorded commands at {}: {e}", log.display()));
    assert!(
        text.lines().any(|l| l.contains("\"argv\"")),
        "{node}: commands.jsonl records no argv:\n{text}"
    );
    let s = state(env);
    for kind in [
        StepKind::Render,
        StepKind::Launch,
        StepKind::Enrol,
        StepKind::Prerequisites,
    ] {
        assert_eq!(
            s.status(&StepId::new(kind, node)),
            Some(StepStatus::Done),
            "{kind}/{node}"
        );
    }
}

/// Supervisor starts per node, from the supervisor logs: one launch each.
fn launches(env: &LocalEnv, node: &str) -> usize {
    let log = env
        .node_dir(node)
        .join("root/var/log/hostctl/supervisor.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("supervising "))
        .count()
}

#[test]
fn six_nodes_enrol_and_prepare_and_a_killed_up_resumes_without_relaunching() {
    if !tests::can_run_netns("provisioning") || !prerequisites_are_recorded("provisioning") {
        return;
    }
    let env = LocalEnv::new(41, SIX);
    // Start `up`, kill it (SIGKILL) as soon as some launch is recorded done.
    let mut child = Command::new(&env.bins.hostctl)
        .arg("--home")
        .arg(env.home())
        .arg("--topology")
        .arg(&env.topology)
        .args(up_args())
        .env("HOSTCTL_NODE_AGENT", &env.bins.node_agent)
        .env(host_agent::environment::DAEMON_EXE.name, &env.bins.hostctl)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hostctl up");
    poll::until(
        "a launch recorded done",
        Duration::from_secs(60),
        Duration::from_millis(20),
        || {
            let s = UpState::load(&env.home().join(STATE_FILE)).ok()?;
            s.steps
                .iter()
                .any(|(id, r)| id.kind() == "launch" && r.status == StepStatus::Done)
                .then_some(())
        },
        || format!("{:?}", state(&env)),
    );
    child.kill().expect("SIGKILL hostctl up");
    let _ = child.wait();
    let at_kill = state(&env);
    let done = |kind: &str| {
        at_kill
            .steps
            .iter()
            .filter(|(id, r)| id.kind() == kind && r.status == StepStatus::Done)
            .count()
    };
    eprintln!(
        "killed with {} launch(es), {} enrolment(s), {} prerequisite step(s) done",
        done("launch"),
        done("enrol"),
        done("prerequisites")
    );
    assert!(
        done("prerequisites") < SIX.len(),
        "up finished before it was killed; the rerun would prove nothing"
    );
    let pids_before: Vec<(String, Option<i32>)> = SIX
        .iter()
        .map(|n| ((*n).to_owned(), env.supervisor_pid(n)))
        .collect();

    let started = std::time::Instant::now();
    env.hostctl_ok(&up_args());
    eprintln!(
        "rerun completed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for node in SIX {
        assert_prepared(&env, node);
    }
    // Nodes launched before the kill kept their supervisor: not relaunched.
    for (node, pid) in pids_before {
        if let Some(pid) = pid {
            assert_eq!(
                env.supervisor_pid(&node),
                Some(pid),
                "{node} was relaunched"
            );
        }
        assert!(launches(&env, &node) <= 1, "{node} launched more than once");
    }
    assert_eq!(env.local_state().nodes.len(), SIX.len());
    env.finish();
}

#[test]
fn a_node_whose_launch_fails_leaves_the_others_going_and_a_rerun_completes() {
    if !tests::can_run_netns("provisioning") || !prerequisites_are_recorded("provisioning") {
        return;
    }
    let nodes = ["app1-cp", "app1-worker-0", "app2-cp"];
    let env = LocalEnv::new(42, &nodes);
    // A real cause `ip` reports: the namespace file the provider must
    // create is a directory, so `ip netns del/add` fail for that node only.
    let names = host_agent::provider::local::Names::for_home(env.home());
    let blocker = Blocker(std::path::Path::new("/run/netns").join(names.netns("app1-worker-0")));
    std::fs::create_dir_all(blocker.0.join("blocker")).expect("create the blocker");
    let out = env.hostctl(&up_args());
    assert!(!out.status.success(), "up must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("launch/app1-worker-0"), "{err}");
    assert!(err.contains("app1-worker-0:"), "names the node: {err}");
    assert!(
        err.contains("namespace file") && err.contains("Is a directory"),
        "gives the ip cause: {err}"
    );
    assert_prepared(&env, "app1-cp");
    assert_prepared(&env, "app2-cp");

    drop(blocker);
    env.hostctl_ok(&up_args());
    for node in nodes {
        assert_prepared(&env, node);
    }
    env.finish();
}

/// Removes the test's conflicting namespace file whatever happens.
struct Blocker(std::path::PathBuf);

impl Drop for Blocker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
