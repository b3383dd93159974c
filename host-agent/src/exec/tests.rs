use super::*;
use std::error::Error as _;

fn sh(script: &str) -> Cmd {
    Cmd::new("/bin/sh").args(["-c", script])
}

#[tokio::test]
async fn output_returns_any_exit_and_run_makes_a_failure_an_exit_error() {
    let cmd = sh("echo out; echo warning >&2; echo 'Error: it broke' >&2; exit 3");
    let out = RealRunner.output(&cmd).await.unwrap();
    assert_eq!(out.code(), Some(3));
    assert_eq!(out.stdout_text(), "out\n");
    match RealRunner.run(&cmd).await {
        Err(ExecError::Exit {
            command,
            status,
            stderr,
        }) => {
            assert!(command.starts_with("/bin/sh -c echo out"), "{command}");
            assert_eq!(status.code(), Some(3));
            assert_eq!(stderr, "warning\nError: it broke");
        }
        other => panic!("expected Exit, got {other:?}"),
    }
    let ok = RealRunner.run(&sh("printf hi")).await.unwrap();
    assert_eq!(ok.stdout_text(), "hi");
}

#[tokio::test]
async fn a_missing_program_names_itself_and_keeps_the_io_error() {
    let cmd = Cmd::new("/nonexistent/hostctl-no-such-tool").arg("--flag");
    let err = RealRunner.output(&cmd).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot run `/nonexistent/hostctl-no-such-tool --flag`: "),
        "{err}"
    );
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(
        io.map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound)
    );
}

#[tokio::test]
async fn a_command_past_its_deadline_is_killed() {
    let started = std::time::Instant::now();
    let cmd = sh("sleep 30").deadline(Duration::from_millis(200));
    match RealRunner.output(&cmd).await {
        Err(ExecError::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(200)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_environment_is_added_to_the_inherited_one() {
    let cmd = sh("printf %s \"$EXEC_TEST_VALUE\"").env("EXEC_TEST_VALUE", "yes");
    assert_eq!(RealRunner.run(&cmd).await.unwrap().stdout_text(), "yes");
}

#[test]
fn the_stderr_tail_is_bounded_in_lines_and_bytes() {
    let many: String = (0..100).map(|i| format!("line {i}\n")).collect();
    let kept = tail(&many);
    assert_eq!(kept.lines().count(), STDERR_TAIL_LINES);
    assert!(kept.ends_with("line 99"), "{kept}");
    let wide = format!("{}\n", "é".repeat(STDERR_TAIL_BYTES));
    let kept = tail(&wide);
    assert!(kept.starts_with('…') && kept.len() <= STDERR_TAIL_BYTES + '…'.len_utf8());
}

#[test]
fn an_exit_without_stderr_says_only_the_status() {
    let cmd = Cmd::new("ip").args(["link", "del", "x"]);
    let err = CommandOutput::exited(2).exit_error(&cmd);
    assert_eq!(err.to_string(), "`ip link del x` failed (exit status: 2)");
    let err = CommandOutput::exited(1)
        .with_stderr("Cannot find device \"x\"\n")
        .exit_error(&cmd);
    assert_eq!(
        err.to_string(),
        "`ip link del x` failed (exit status: 1): Cannot find device \"x\""
    );
    assert_eq!(CommandOutput::killed(9).code(), None);
}

#[tokio::test]
async fn the_recording_runner_records_and_answers_from_its_script() {
    let runner = RecordingRunner::answering(|cmd| {
        Ok(if cmd.get_args().first().is_some_and(|a| a == "fail") {
            CommandOutput::exited(1).with_stderr("no")
        } else {
            CommandOutput::exited(0).with_stdout("yes")
        })
    });
    let ok = runner.run(&Cmd::new("tool").arg("go")).await.unwrap();
    assert_eq!(ok.stdout_text(), "yes");
    let err = runner.run(&Cmd::new("tool").arg("fail")).await.unwrap_err();
    assert!(matches!(err, ExecError::Exit { ref stderr, .. } if stderr == "no"));
    assert_eq!(runner.argvs(), [["go"], ["fail"]]);
}

#[tokio::test]
async fn a_spawned_child_gets_its_streams_and_can_be_awaited() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("child.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = sh("echo to-log; echo err-too >&2")
        .spawner()
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    assert!(child.wait().await.unwrap().success());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "to-log\nerr-too\n");
    let missing = Cmd::new("/nonexistent/daemon").spawner().spawn_std();
    assert!(missing.is_err_and(|e| e.is_not_found()));
}
