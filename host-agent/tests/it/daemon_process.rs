//! The `hostctl daemon` process: one per home, a 0600 socket, graceful
//! SIGTERM, a crashed daemon's socket file does not block the next start,
//! and CLI commands start the daemon when it is not running.

use test_support::host_daemon as support;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use host_agent::daemon::ControlClient;
use host_agent::daemon::lifecycle::PidLock;
use support::{BoxError, Home};
use tokio::process::{Child, Command};

const HOSTCTL: &str = env!("CARGO_BIN_EXE_hostctl");

/// A port that was free a moment ago.
fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The default topology, but listening on loopback on a free port (so
/// tests never take 7443 on the machine).
fn topology_file(home: &Home) -> Result<PathBuf, BoxError> {
    let mut t = topology::default_topology();
    t.host_agent.listen = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    t.host_agent.port = free_port()?;
    let path = home.path().join("topology.yaml");
    std::fs::write(&path, t.to_yaml())?;
    Ok(path)
}

fn daemon(home: &Path) -> Command {
    let mut cmd = Command::new(HOSTCTL);
    cmd.arg("--home")
        .arg(home)
        .args(["daemon", "--listen", "127.0.0.1", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn wait_for_socket(home: &Path) -> Result<ControlClient, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut c) = ControlClient::connect(&home.join("daemon.sock")).await
            && c.status().await.is_ok()
        {
            return Ok(c);
        }
        if Instant::now() > deadline {
            return Err("the daemon never answered on its socket".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_exit(child: &mut Child) -> Result<std::process::ExitStatus, BoxError> {
    Ok(tokio::time::timeout(Duration::from_secs(20), child.wait()).await??)
}

#[tokio::test]
async fn one_daemon_per_home_with_a_private_socket_and_graceful_sigterm() -> Result<(), BoxError> {
    let home = Home::new()?;
    let mut first = daemon(home.path()).spawn()?;
    let mut client = wait_for_socket(home.path()).await?;
    let socket = home.path().join("daemon.sock");
    let mode = std::fs::metadata(&socket)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "control socket mode {mode:o}");
    let pid = client.status().await?.daemon_pid;
    assert_eq!(Some(pid), first.id());

    let second = daemon(home.path()).output().await?;
    assert_eq!(
        second.status.code(),
        Some(5),
        "a second daemon must be refused"
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already running"), "{err}");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    assert!(killed.success());
    let status = wait_exit(&mut first).await?;
    assert!(
        status.success(),
        "SIGTERM must stop the daemon cleanly: {status}"
    );
    assert!(!socket.exists(), "socket not removed on shutdown");
    assert!(!PidLock::is_held(home.path())?, "pid lock still held");
    Ok(())
}

#[tokio::test]
async fn a_crashed_daemons_socket_does_not_block_a_new_start() -> Result<(), BoxError> {
    let home = Home::new()?;
    let mut first = daemon(home.path()).spawn()?;
    wait_for_socket(home.path()).await?;
    first.kill().await?; // SIGKILL: no cleanup, socket file left behind
    assert!(home.path().join("daemon.sock").exists());

    let mut second = daemon(home.path()).spawn()?;
    let mut client = wait_for_socket(home.path()).await?;
    assert_eq!(Some(client.status().await?.daemon_pid), second.id());
    client.shutdown().await?;
    assert!(wait_exit(&mut second).await?.success());
    Ok(())
}

/// Looking starts nothing: after `down`, a `status` that started a daemon
/// left it listening on 0.0.0.0 for nodes that no longer exist.
#[tokio::test]
async fn status_without_a_daemon_starts_nothing_and_says_so() -> Result<(), BoxError> {
    let home = Home::new()?;
    let topology = topology_file(&home)?;
    let out = Command::new(HOSTCTL)
        .arg("--home")
        .arg(home.path())
        .arg("--topology")
        .arg(&topology)
        .args(["-o", "json", "status"])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("nothing is running for"), "{stderr}");
    assert!(stderr.contains("hostctl up"), "{stderr}");
    assert!(!PidLock::is_held(home.path())?, "a daemon was started");
    assert!(
        !home.path().join("daemon.log").exists(),
        "a daemon was started"
    );
    Ok(())
}
