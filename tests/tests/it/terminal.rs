//! `hostctl up` on a real terminal: tmux gives it a pseudo-terminal of 80
//! columns and shows us the screen as a person would see it
//! (`capture-pane`), and `send-keys C-c` types Ctrl-C. Needs root (the local
//! provider) and tmux (`.ci/run` installs it).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};
use tests::LocalEnv;

/// One detached tmux session running a shell command; killed on drop.
struct Pane {
    name: String,
}

impl Pane {
    fn start(name: &str, command: &str) -> Pane {
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "80",
                "-y",
                "50",
                command,
            ])
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Pane {
            name: name.to_owned(),
        }
    }

    /// The visible screen.
    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        tests::poll::until(
            what,
            limit,
            Duration::from_millis(200),
            || Some(self.screen()).filter(|s| pred(s)),
            || self.screen(),
        )
    }

    fn ctrl_c(&self) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "C-c"])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

fn have_tmux(test: &str) -> bool {
    if !tests::can_run_netns(test) {
        return false;
    }
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    ok || tests::skip(test, "tmux not installed")
}

/// The shell command that runs `up` for `env` and then prints its exit
/// code (the pane stays open for us to read).
fn up_command(env: &LocalEnv, agent: &std::path::Path, extra: &str) -> String {
    format!(
        "env -u HOSTCTL_HOME -u HOSTCTL_TOPOLOGY HOSTCTL_NODE_AGENT='{agent}' {daemon}='{hostctl}' '{hostctl}' --home '{home}' --topology '{topology}' up --provider local --nodes-only --report-interval 1 {extra}; echo EXIT=$?; sleep 600",
        agent = agent.display(),
        daemon = host_agent::environment::DAEMON_EXE.name,
        hostctl = env.bins.hostctl.display(),
        home = env.home().display(),
        topology = env.topology.display(),
    )
}

#[test]
fn the_summary_is_whole_on_screen_after_the_run() {
    if !have_tmux("the_summary_is_whole_on_screen_after_the_run") {
        return;
    }
    let env = LocalEnv::new(10, &["app1-cp", "app1-worker-0"]);
    let pane = Pane::start(
        "hostctl-summary",
        &up_command(&env, &env.bins.node_agent, "--timeout 300"),
    );
    let screen = pane.wait_for("up to finish", Duration::from_secs(600), |s| {
        s.contains("EXIT=")
    });
    assert!(screen.contains("EXIT=0"), "{screen}");
    let lines: Vec<&str> = screen.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("NODE"))
        .unwrap_or_else(|| panic!("no summary table on screen:\n{screen}"));
    for node in ["app1-cp", "app1-worker-0"] {
        assert!(
            lines[header..].iter().any(|l| l.starts_with(node)),
            "{node}'s row is not visible:\n{screen}"
        );
    }
    assert!(
        lines[header..].iter().any(|l| l.starts_with("2 node(s)")),
        "{screen}"
    );
    // Nothing of the progress lines was left drawn over or under it.
    assert!(
        !lines[header..]
            .iter()
            .any(|l| l.contains("prerequisites: ")),
        "{screen}"
    );
    drop(pane);
    env.finish();
}

#[test]
fn a_row_shows_its_running_step_and_ctrl_c_ends_a_wait_with_130() {
    if !have_tmux("a_row_shows_its_running_step_and_ctrl_c_ends_a_wait_with_130") {
        return;
    }
    let env = LocalEnv::new(11, &["app2-cp"]);
    // An agent that never enrols: the enrol step waits (for 600 s).
    let agent = env.home().join("silent-agent");
    std::fs::write(&agent, "#!/bin/sh\nexec sleep 3600\n").unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pane = Pane::start("hostctl-ctrl-c", &up_command(&env, &agent, "--timeout 600"));
    let screen = pane.wait_for(
        "app2-cp's line to show the enrol step running",
        Duration::from_secs(120),
        |s| {
            s.lines()
                .any(|l| l.contains("app2-cp") && l.contains("enrol:"))
        },
    );
    assert!(!screen.contains("EXIT="), "{screen}");
    let typed = Instant::now();
    pane.ctrl_c();
    let screen = pane.wait_for("up to end after Ctrl-C", Duration::from_secs(60), |s| {
        s.contains("EXIT=")
    });
    let took = typed.elapsed();
    eprintln!("Ctrl-C to exit: {:.1} s", took.as_secs_f64());
    assert!(screen.contains("EXIT=130"), "{screen}");
    assert!(screen.contains("interrupted"), "{screen}");
    let row = screen
        .lines()
        .find(|l| l.starts_with("app2-cp"))
        .unwrap_or_else(|| panic!("no summary row:\n{screen}"));
    assert!(row.contains("interrupted"), "{screen}");
    drop(pane);
    env.finish();
}
