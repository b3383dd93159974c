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
        eprintln!(
            "SKIP local_provider_without_root_says_to_use_sudo: needs setpriv (util-linux) to drop root"
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
        eprintln!("SKIP: multipass is installed here");
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
