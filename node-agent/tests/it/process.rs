//! The `node-agent` binary itself: configuration errors, SIGTERM, and a
//! kill -9 followed by a restart that resumes with the stored certificate.

use test_support::node_harness as harness;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harness::{Harness, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_node-agent");

fn spawn(config: &Path) -> std::io::Result<Child> {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// Sends a signal with kill(1): the crate forbids unsafe, so no libc.
fn signal(child: &Child, sig: &str) -> std::io::Result<()> {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("kill {sig} failed")))
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> TestResult<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err("node-agent did not exit".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_bad_config_names_the_file_and_field_and_exits_non_zero() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node-agent.yaml");
    std::fs::write(&path, "node: n1\ncluster: c\nreportIntervalSecond: 5\n")?;
    let out = Command::new(BIN).arg("--config").arg(&path).output()?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("reportIntervalSecond"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    Ok(())
}

#[tokio::test]
async fn killed_and_restarted_it_resumes_without_a_token_and_stops_on_sigterm() -> TestResult {
    let h = Harness::start().await?;
    let root = tempfile::tempdir()?;
    let token = h.pki.issue_token("n1")?;
    let config = h.config("n1", root.path(), Some(token.clone()));
    let path = root.path().join("node-agent.yaml");
    std::fs::write(&path, config.to_yaml()?)?;

    let mut first = spawn(&path)?;
    let stored = h
        .host
        .wait_for(Duration::from_secs(30), "a report", |r| !r.is_empty())
        .await;
    signal(&first, "-KILL")?;
    let _ = first.wait();
    let first_instance = stored?[0].agent_instance.clone();

    // Same config, token already spent: only the stored certificate works.
    let mut second = spawn(&path)?;
    let resumed = h
        .host
        .wait_for(
            Duration::from_secs(30),
            "a report from the restarted agent",
            |r| r.iter().any(|x| x.agent_instance != first_instance),
        )
        .await;
    signal(&second, "-TERM")?;
    let status = wait_exit(&mut second, Duration::from_secs(10))?;
    let resumed = resumed?;
    let new: Vec<u64> = resumed
        .iter()
        .filter(|r| r.agent_instance != first_instance)
        .map(|r| r.seq)
        .collect();
    assert_eq!(new.first(), Some(&1), "a new instance starts at seq 1");
    assert!(status.success(), "SIGTERM should be a clean exit: {status}");
    let log = std::fs::read_to_string(root.path().join("var/log/hostctl/node-agent.log"))?;
    assert!(log.contains("node agent running"), "{log}");
    assert!(!log.contains(&token), "the enrolment token was logged");
    let key = std::fs::read_to_string(root.path().join("state/key.pem"))?;
    let key_line = key.lines().nth(1).ok_or("empty key")?;
    assert!(!log.contains(key_line), "key material was logged");
    Ok(())
}
