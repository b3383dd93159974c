//! `hostctl render` writes `DIR/nodes/<node>/user-data` for every node, and
//! every one passes cloud-init's strict schema (shared/tools/
//! validate-cloud-config, which also runs `cloud-init schema` when
//! installed). A small stand-in binary is embedded so the test stays fast.

use std::path::Path;
use std::process::Command;

#[test]
fn every_node_gets_user_data_that_cloud_init_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let stand_in_agent = dir.path().join("node-agent-stand-in");
    std::fs::write(&stand_in_agent, b"#!/bin/sh\nexit 0\n").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_hostctl"))
        .arg("--home")
        .arg(dir.path().join("home"))
        .args(["render", "--out"])
        .arg(&out)
        .arg("--node-agent-bin")
        .arg(&stand_in_agent)
        .env_remove("HOSTCTL_TOPOLOGY")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&run.stderr).contains("PLACEHOLDER"),
        "the given binary is embedded, not the placeholder"
    );
    let topology = topology::default_topology();
    let files: Vec<_> = topology
        .nodes()
        .iter()
        .map(|n| out.join("nodes").join(&n.name).join("user-data"))
        .collect();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.starts_with("#cloud-config\n"), "{}", f.display());
        assert!(
            text.contains("enrolmentToken: <issued at launch>"),
            "{text}"
        );
        assert!(text.contains("/usr/local/bin/node-agent"));
    }
    let tool =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/validate-cloud-config");
    if !tool.exists() {
        test_support::skip(
            "orchestrator_render schema check",
            &format!("{} not found", tool.display()),
        );
        return;
    }
    let check = Command::new(&tool).args(&files).output().unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn without_a_binary_render_embeds_a_marked_placeholder_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_hostctl"))
        .arg("--home")
        .arg(dir.path().join("home"))
        .args(["render", "--out"])
        .arg(&out)
        .env_remove("HOSTCTL_TOPOLOGY")
        .env_remove("HOSTCTL_NODE_AGENT")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("PLACEHOLDER") && stderr.contains("--node-agent-bin"),
        "{stderr}"
    );
    let user_data = std::fs::read_to_string(out.join("nodes/app1-cp/user-data")).unwrap();
    assert!(
        user_data.len() < 64 * 1024,
        "placeholder user-data stays small"
    );
}
