//! The command line without machines: versions, settings, the JSON of an
//! empty state, and Multipass's exit codes and messages for refusals. No
//! root or network needed.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn state_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mpemu-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn emu(state: Option<&PathBuf>, args: &[&str]) -> Output {
    let mut cmd = Command::new(common::emulator_bin());
    cmd.args(args).env_remove("MULTIPASS_EMULATOR_VERSION");
    match state {
        Some(s) => cmd.env("MULTIPASS_EMULATOR_STATE", s),
        None => cmd.env_remove("MULTIPASS_EMULATOR_STATE"),
    };
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_get_and_an_empty_list_answer_like_multipass() {
    let state = state_dir("version");
    let v = emu(Some(&state), &["version"]);
    assert_eq!(
        text(&v.stdout),
        "multipass   1.16.3+mac\nmultipassd  1.16.3+mac\n"
    );
    let no_daemon = emu(None, &["version"]);
    assert_eq!(text(&no_daemon.stdout), "multipass   1.16.3+mac\n");
    let other = Command::new(common::emulator_bin())
        .arg("version")
        .env("MULTIPASS_EMULATOR_STATE", &state)
        .env("MULTIPASS_EMULATOR_VERSION", "1.16.1+mac")
        .output()
        .unwrap();
    assert!(text(&other.stdout).contains("multipassd  1.16.1+mac"));
    assert_eq!(
        text(&emu(Some(&state), &["get", "local.driver"]).stdout),
        "qemu\n"
    );
    let list = emu(Some(&state), &["list", "--format", "json"]);
    assert!(list.status.success());
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"list": []}));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&state).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the state directory is private");
    std::fs::remove_dir_all(&state).unwrap();
}

#[test]
fn refusals_have_multipass_exit_codes_and_messages() {
    let state = state_dir("refusals");
    let s = Some(&state);
    let no_state = emu(None, &["list", "--format", "json"]);
    assert_eq!(no_state.status.code(), Some(3), "daemon unreachable");
    assert!(text(&no_state.stderr).contains("list failed: cannot connect to the multipass socket"));

    let missing = emu(s, &["info", "--format", "json", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        text(&missing.stderr).trim(),
        "info failed: instance \"nope\" does not exist"
    );
    for cmd in ["start", "stop", "delete"] {
        let out = emu(s, &[cmd, "nope"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(
            text(&out.stderr).contains(&format!("{cmd} failed: instance \"nope\" does not exist"))
        );
    }
    for args in [
        &["launch", "--name", "a", "--memory", "lots"][..],
        &["launch", "--name", "a", "--timeout", "0"],
        &["launch", "--name", "a", "--cpus", "x"],
        &["launch", "--no-such-flag"],
        &[
            "launch",
            "--name",
            "a",
            "--cloud-init",
            "/nonexistent/user-data",
        ],
    ] {
        assert_eq!(emu(s, args).status.code(), Some(1), "{args:?}");
    }
    let bad_name = emu(s, &["launch", "--name", "1node"]);
    assert_eq!(bad_name.status.code(), Some(2));
    assert!(text(&bad_name.stderr).contains("Invalid instance name supplied: 1node"));
    let small = emu(s, &["launch", "--name", "a", "--disk", "100M"]);
    assert_eq!(small.status.code(), Some(2));
    let unknown = emu(s, &["get", "no.such.key"]);
    assert_eq!(unknown.status.code(), Some(2));
    std::fs::remove_dir_all(&state).unwrap();
}
