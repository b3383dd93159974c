//! `hostctl up` refuses clearly, with exit code 5 and before writing
//! anything, when the local provider cannot work (not root) or the provider
//! does not exist yet (multipass). No namespaces are created.

use std::process::{Command, Output};
use tests::bins::Binaries;

/// Exit code for an unmet precondition (see the README).
const PRECONDITION: i32 = 5;

fn up(home: &std::path::Path, provider: &str, as_nobody: bool) -> Output {
    let hostctl = Binaries::locate().hostctl;
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(hostctl);
        c
    } else {
        Command::new(hostctl)
    };
    cmd.arg("--home")
        .arg(home)
        .args(["up", "--provider", provider])
        .current_dir("/")
        .env_remove("HOSTCTL_TOPOLOGY")
        .output()
        .expect("run hostctl")
}

#[test]
fn local_provider_without_root_says_to_use_sudo() {
    let root = rustix::process::geteuid().is_root();
    let has_setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if root && !has_setpriv {
        tests::skip(
            "local_provider_without_root_says_to_use_sudo",
            "needs setpriv (util-linux) to drop root",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let out = up(&home, "local", root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(PRECONDITION), "{stderr}");
    assert!(
        stderr.contains("needs root") && stderr.contains("sudo"),
        "{stderr}"
    );
    assert!(!home.exists(), "up wrote to the home before failing");
}

#[test]
fn multipass_missing_is_a_precondition_error_that_says_how_to_install_it() {
    // This machine has no Multipass: `up` must say so, with the fix.
    if std::process::Command::new("multipass")
        .arg("version")
        .output()
        .is_ok()
    {
        tests::skip(
            "multipass_missing_is_a_precondition_error_that_says_how_to_install_it",
            "multipass is installed here",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = up(&dir.path().join("home"), "multipass", false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(PRECONDITION), "{stderr}");
    assert!(
        stderr.contains("multipass is not installed") && stderr.contains("install Multipass"),
        "{stderr}"
    );
}

/// The QEMU provider without a base image fails first, as a precondition,
/// before anything is rendered or created.
#[test]
fn qemu_without_a_base_image_is_a_precondition_found_first() {
    if host_agent::provider::qemu::vm::find_program("qemu-system-x86_64").is_none() {
        tests::skip(
            "qemu_without_a_base_image_is_a_precondition_found_first",
            "no qemu-system-x86_64",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let out = Command::new(Binaries::locate().hostctl)
        .arg("--home")
        .arg(&home)
        .args(["up", "--provider", "qemu"])
        .current_dir("/")
        .env_remove("HOSTCTL_TOPOLOGY")
        .env_remove("HOSTCTL_QEMU_IMAGE")
        .env("HOSTCTL_QEMU_NET", "user")
        .output()
        .expect("run hostctl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(PRECONDITION), "{stderr}");
    assert!(stderr.contains("HOSTCTL_QEMU_IMAGE"), "{stderr}");
    assert!(!home.join("render").exists(), "rendered before failing");
    assert!(!home.join("provider").exists(), "recorded before failing");
}

/// A node agent too big for user-data (a debug build) is refused once,
/// before any machine, with the fix — not after compressing it per node.
#[test]
fn an_agent_too_big_for_user_data_is_refused_first_with_the_fix() {
    let bins = Binaries::locate();
    let debug_agent = bins.hostctl.with_file_name("node-agent");
    let big = std::fs::metadata(&debug_agent)
        .map(|m| m.len())
        .unwrap_or(0);
    if big < 16 << 20 {
        tests::skip(
            "an_agent_too_big_for_user_data_is_refused_first_with_the_fix",
            "no debug node-agent beside hostctl",
        );
        return;
    }
    let image = tempfile::tempdir().expect("image dir");
    for part in ["rootfs.img", "vmlinuz", "initrd.img"] {
        std::fs::write(image.path().join(part), b"x").expect("image part");
    }
    if host_agent::provider::qemu::vm::find_program("qemu-system-x86_64").is_none() {
        tests::skip(
            "an_agent_too_big_for_user_data_is_refused_first_with_the_fix",
            "no qemu-system-x86_64",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let out = Command::new(&bins.hostctl)
        .arg("--home")
        .arg(&home)
        .args(["up", "--provider", "qemu", "--node-agent-bin"])
        .arg(&debug_agent)
        .current_dir("/")
        .env_remove("HOSTCTL_TOPOLOGY")
        .env("HOSTCTL_QEMU_IMAGE", image.path())
        .env("HOSTCTL_QEMU_NET", "user")
        .output()
        .expect("run hostctl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(PRECONDITION), "{stderr}");
    assert!(stderr.contains("make dist"), "{stderr}");
    assert!(stderr.contains("target/node-dist/node-agent"), "{stderr}");
    assert!(!home.join("qemu").exists(), "a machine was started");
}
