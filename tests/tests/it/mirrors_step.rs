//! `hostctl up` with `mirrors: { managed: true }` on the local provider
//! (real hostctl, daemon and node agent in a namespace) while the host's
//! Docker engine is stopped: a STAND-IN `docker` first on the PATH answers
//! `docker version` as the real CLI does without an engine (the message
//! on stderr, exit 1). The mirrors are the graph step `mirrors/host`: it
//! fails and says how to fix it, the machine still launches and enrols
//! beside it, and only the prerequisites, which pull through the mirrors,
//! are not run.

use host_agent::orchestrator::{STATE_FILE, StepStatus, UpState};
use host_agent::state_file::StateDocument as _;
use std::os::unix::fs::PermissionsExt;
use tests::LocalEnv;

/// What `docker version` prints when the engine is not running (Docker
/// CLI 28, `docker version --format …` against a missing socket).
const DOCKER_STOPPED: &str = "#!/bin/sh\n# STAND-IN for the Docker CLI with the engine stopped.\n\
    echo \"$*\" >> \"$(dirname \"$0\")/calls\"\n\
    echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\n\
    exit 1\n";

#[test]
fn with_docker_stopped_the_mirrors_step_fails_with_the_fix_and_blocks_only_the_prerequisites() {
    if !tests::can_run_netns("mirrors_step") {
        return;
    }
    let env = LocalEnv::new(91, &["app1-cp"]);
    let text = std::fs::read_to_string(&env.topology).expect("topology");
    std::fs::write(
        &env.topology,
        format!("{text}\nmirrors:\n  managed: true\n"),
    )
    .expect("write topology");
    let bin = env.home().join("stand-ins/bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let docker = bin.join("docker");
    std::fs::write(&docker, DOCKER_STOPPED).expect("docker stand-in");
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let out = env.hostctl_with_env(
        &[
            "up",
            "--provider",
            "local",
            "--nodes-only",
            "--report-interval",
            "1",
            "--timeout",
            "90",
        ],
        &[("PATH", path.as_str())],
    );
    let text = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "up succeeded without Docker:\n{text}"
    );
    assert!(
        text.contains("mirrors/host") && text.contains("start Docker Desktop"),
        "the failure names the step and the fix:\n{text}"
    );
    assert!(text.contains("HOST") && text.contains("MIRRORS"), "{text}");
    let calls = std::fs::read_to_string(bin.join("calls")).expect("docker was asked");
    assert!(calls.lines().all(|c| c.starts_with("version")), "{calls}");

    let state = UpState::load(&env.home().join(STATE_FILE)).expect("up state");
    let status = |id: &str| {
        state
            .steps
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, r)| (r.status, r.error.clone().unwrap_or_default()))
            .unwrap_or_else(|| panic!("{id} not recorded: {:?}", state.steps))
    };
    for id in ["render/app1-cp", "launch/app1-cp", "enrol/app1-cp"] {
        assert_eq!(status(id).0, StepStatus::Done, "{id}");
    }
    assert_eq!(status("mirrors/host").0, StepStatus::Failed);
    let (prereq, why) = status("prerequisites/app1-cp");
    assert_eq!(prereq, StepStatus::Pending, "{why}");
    assert!(why.contains("mirrors/host"), "{why}");
}
