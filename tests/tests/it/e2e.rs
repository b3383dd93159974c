//! End to end: six node agents, each in its own network namespace, enrol
//! with single-use tokens and report to the daemon; `hostctl status -o json`
//! shows all six connected and fresh. Then `down --purge` leaves nothing.

use std::time::{Duration, Instant};
use tests::LocalEnv;

const SIX: [&str; 6] = [
    "mgmt-cp",
    "mgmt-worker-0",
    "app1-cp",
    "app1-worker-0",
    "app2-cp",
    "app2-worker-0",
];

#[test]
fn six_agents_enrol_and_report() {
    if !tests::can_run_netns("six_agents_enrol_and_report") {
        return;
    }
    let env = LocalEnv::new(1, &SIX);
    let started = Instant::now();
    let out = env.up(1);
    eprintln!("{out}up took {:.1} s", started.elapsed().as_secs_f64());

    // `up` returns once every agent reported; status must agree, for all six.
    let nodes = env.status_nodes();
    let mut names: Vec<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
    names.sort_unstable();
    let mut want = SIX.to_vec();
    want.sort_unstable();
    assert_eq!(names, want, "status lists other nodes");
    for node in &nodes {
        assert!(LocalEnv::is_fresh(node, 3.0), "not fresh: {node:#}");
        assert_eq!(node["vm_state"], "Running", "{node:#}");
        assert!(
            node["reports_stored"].as_u64().unwrap_or(0) >= 1,
            "{node:#}"
        );
    }

    // `hostctl logs` reaches a node's agent over mutual TLS (admin identity)
    // and streams its log: the tail, then new lines while following.
    let tail = env.hostctl_ok(&["logs", "app1-cp", "--tail", "3"]);
    let lines: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        (1..=3).contains(&lines.len()),
        "expected 1–3 tail lines, got:\n{tail}"
    );
    assert_follow_streams(&env, "app2-worker-0");

    // A second `up` finds every machine launched and every agent enrolled:
    // those steps are "already done" (their postconditions hold), and no
    // machine is launched again (the supervisors are the same processes).
    let supervisors: Vec<Option<i32>> = SIX.iter().map(|n| env.supervisor_pid(n)).collect();
    let again = env.hostctl_ok(&[
        "-o",
        "json",
        "up",
        "--nodes-only",
        "--provider",
        "local",
        "--report-interval",
        "1",
        "--timeout",
        "90",
    ]);
    let rows: serde_json::Value =
        serde_json::from_str(&again).expect("up -o json prints its summary");
    let outcome = |node: &str, step: &str| -> String {
        rows.as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["subject"] == node)
            .flat_map(|r| r["steps"].as_array().cloned().unwrap_or_default())
            .find(|s| s["step"] == step)
            .and_then(|s| s["outcome"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    for node in SIX {
        assert_eq!(outcome(node, "launch"), "already done", "{node}: {again}");
        assert_eq!(outcome(node, "enrol"), "already done", "{node}: {again}");
    }
    let after: Vec<Option<i32>> = SIX.iter().map(|n| env.supervisor_pid(n)).collect();
    assert_eq!(supervisors, after, "a machine was launched again");

    // Reports keep flowing (interval 1 s): two more seconds, still fresh.
    std::thread::sleep(Duration::from_secs(2));
    for node in env.status_nodes() {
        assert!(LocalEnv::is_fresh(&node, 3.0), "went stale: {node:#}");
    }
    env.finish();
}

/// `hostctl logs NODE -f` keeps running and streams what reaches the node's
/// log after it started (the local provider's agents log to a file in the
/// node's root directory, which this test can append a marker to).
fn assert_follow_streams(env: &LocalEnv, node: &str) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let mut child = Command::new(&env.bins.hostctl)
        .arg("--home")
        .arg(env.home())
        .args(["logs", node, "-f", "--tail", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hostctl logs -f");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10));
    assert!(first.is_ok(), "no tail line from `logs -f`");

    let marker = format!("follow-marker-{}", std::process::id());
    let log = env
        .node_dir(node)
        .join("root/var/log/hostctl/node-agent.log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    writeln!(file, "{marker}").expect("append marker");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(&marker) => {
                seen = true;
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    let still_running = child.try_wait().ok().flatten().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen,
        "`logs -f` did not stream the line appended to {}",
        log.display()
    );
    assert!(still_running, "`logs -f` exited instead of following");
}

/// The Linux first run, as the README's quick start types it: `sudo hostctl
/// up`, no provider, no `--nodes-only`. As root on Linux that is the local
/// provider, which plans only what can succeed there and ends with one line
/// saying what was not done and why — never a wait for an API server that
/// cannot exist.
#[test]
fn a_first_up_as_root_on_linux_needs_no_flags() {
    if !tests::can_run_netns("a_first_up_as_root_on_linux_needs_no_flags") {
        return;
    }
    let env = LocalEnv::new(7, &["app1-cp"]);
    let out = env.hostctl_ok(&["up", "--report-interval", "1"]);
    let last = out.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert_eq!(last, host_agent::commands::up::LOCAL_SCOPE_NOTE, "{out}");
    let state = std::fs::read_to_string(env.home().join("up-state.json")).unwrap();
    for not_planned in ["kubeadm-init", "cni/", "addons/"] {
        assert!(
            !state.contains(not_planned),
            "{not_planned} was planned:\n{state}"
        );
    }
    assert!(state.contains("prerequisites/app1-cp"), "{state}");
    assert_eq!(
        std::fs::read_to_string(env.home().join("provider"))
            .unwrap()
            .trim(),
        "local"
    );
    // The home is private from its first creation: no directory in it is
    // open to other users, and no file but public certificates (and the
    // local nodes' own /etc, as a machine has it), so nothing can be read.
    let open: Vec<String> = open_entries(env.home())
        .into_iter()
        .filter(|e| {
            let public = [".crt", ".pub", "cert.pem"].iter().any(|s| e.ends_with(s))
                || e.contains("/root/etc/")
                || e.ends_with("/hostctl.yaml");
            e.starts_with('7') || !public
        })
        .collect();
    assert!(open.is_empty(), "open to others: {open:#?}");
    // No etcd runs on a local node: a snapshot says so, plainly.
    let out = env.hostctl(&["etcd", "snapshot", "app1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no etcd on this node"), "{stderr}");
    assert!(
        stderr.contains("a node of the local provider never runs it"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("no cluster has role mgmt").count(),
        1,
        "{stderr}"
    );
    env.finish();
}

/// A failed `up` (here: a damaged PKI, found after the node network was
/// created) leaves nothing that `down --purge` cannot remove: the provider
/// is recorded before anything is created.
#[test]
fn a_failed_up_leaves_nothing_behind_after_down() {
    if !tests::can_run_netns("a_failed_up_leaves_nothing_behind_after_down") {
        return;
    }
    let env = LocalEnv::new(8, &["app2-cp"]);
    let agent = env.home().join("pki/agent");
    std::fs::create_dir_all(&agent).unwrap();
    std::fs::write(agent.join("ca.key"), "not a key").unwrap();
    std::fs::write(agent.join("ca.crt"), "not a certificate").unwrap();
    let args = LocalEnv::up_args(1, 30);
    let out = env.hostctl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        !env.leftovers().is_empty(),
        "the scenario needs an up that failed after creating the network"
    );
    env.finish(); // `down --purge`, then: nothing of this home is left
}

/// `doctor` on Linux finds the node subnet already used by another
/// interface (here a stale bridge left by another home) before `up` would
/// route node traffic into it.
#[test]
fn doctor_finds_the_node_subnet_on_another_interface() {
    if !tests::can_run_netns("doctor_finds_the_node_subnet_on_another_interface") {
        return;
    }
    let env = LocalEnv::new(9, &["app1-cp"]);
    let stale = "hcstale09";
    let ip = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap()
    };
    ip(&["link", "add", stale, "type", "bridge"]);
    ip(&["addr", "add", "10.251.9.1/24", "dev", stale]);
    let out = env.hostctl(&["doctor", "--provider", "local"]);
    ip(&["link", "del", stale]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("subnet-free"))
        .unwrap_or("");
    assert!(line.contains("fail") && line.contains(stale), "{text}");
    // Free again: the same check passes.
    let out = env.hostctl(&["doctor", "--provider", "local"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("subnet-free"))
        .unwrap_or("");
    assert!(line.contains("ok"), "{text}");
    env.finish();
}

/// Every entry under `dir` with a group or other permission bit (links
/// excepted: their mode means nothing).
fn open_entries(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut open = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                continue;
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                open.push(format!("{:o} {}", mode, e.path().display()));
            }
            if meta.is_dir() {
                stack.push(e.path());
            }
        }
    }
    open
}
