//! The issue-2 commands through the real `hostctl` binary: init → validate →
//! render on the spec's default, every malformed topology of the corpus
//! refused with exit 3 and its field named, and `certs list`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hostctl(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hostctl"))
        .args(args)
        .current_dir(cwd)
        .env("HOSTCTL_HOME", home)
        .env_remove("HOSTCTL_TOPOLOGY")
        .output()
        .expect("hostctl runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../topology/tests/corpus")
}

/// The corpus header lines (see topology/tests/corpus.rs):
/// `# expect: PATH | MESSAGE` for errors, `# expect-warning: ...` for warnings.
fn expectations(file: &Path) -> Vec<(bool, String, String)> {
    let src = std::fs::read_to_string(file).unwrap();
    src.lines()
        .filter_map(|l| {
            let (is_error, rest) = if let Some(r) = l.strip_prefix("# expect:") {
                (true, r)
            } else {
                (false, l.strip_prefix("# expect-warning:")?)
            };
            let (path, message) = rest.split_once('|')?;
            Some((is_error, path.trim().to_owned(), message.trim().to_owned()))
        })
        .collect()
}

#[test]
fn init_validate_render_give_the_spec_environment() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = hostctl(&home, dir.path(), &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.path().join("hostctl.yaml").exists());

    let out = hostctl(&home, dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = hostctl(&home, dir.path(), &["render", "--out", "d"]);
    assert!(out.status.success(), "{}", text(&out));
    let rendered = std::fs::read_to_string(dir.path().join("d/topology.yaml")).unwrap();
    let loaded = topology::parse(&rendered, "d/topology.yaml").expect("render output loads back");
    let t = loaded.topology;
    let names: Vec<&str> = t.clusters().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["mgmt", "app1", "app2"]);
    assert_eq!(t.nodes().len(), 6);
    for (cluster, pod, svc) in [
        ("mgmt", "10.100.0.0/16", "10.96.0.0/16"),
        ("app1", "10.101.0.0/16", "10.97.0.0/16"),
        ("app2", "10.102.0.0/16", "10.98.0.0/16"),
    ] {
        let c = t.cluster(cluster).unwrap();
        assert_eq!(c.pod_cidr.to_string(), pod);
        assert_eq!(c.service_cidr.to_string(), svc);
    }
    for (pool, text) in [
        ("mgmt", "192.168.64.200-192.168.64.210"),
        ("app1", "192.168.64.211-192.168.64.220"),
        ("app2", "192.168.64.221-192.168.64.230"),
    ] {
        let resolved = t.resolve(None).unwrap();
        assert_eq!(resolved.pool(pool).unwrap().to_string(), text);
    }
    assert!(rendered.contains("192.168.64.31"), "addresses are concrete");
}

#[test]
fn render_resolves_host_numbers_against_the_provider_subnet() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = hostctl(
        &home,
        dir.path(),
        &["render", "--out", "d", "--subnet", "192.168.252.0/24"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let rendered = std::fs::read_to_string(dir.path().join("d/topology.yaml")).unwrap();
    assert!(rendered.contains("192.168.252.10"), "{rendered}");
    assert!(rendered.contains("192.168.252.221"), "{rendered}");
    assert!(!rendered.contains("192.168.64."), "{rendered}");
}

#[test]
fn every_malformed_topology_exits_3_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "corpus has {} files", files.len());
    for file in files {
        let expected = expectations(&file);
        assert!(
            !expected.is_empty(),
            "{} has no expectations",
            file.display()
        );
        let out = hostctl(&home, dir.path(), &["validate", file.to_str().unwrap()]);
        let all = text(&out);
        let fails = expected.iter().any(|(is_error, _, _)| *is_error);
        let code = if fails { 3 } else { 0 };
        assert_eq!(out.status.code(), Some(code), "{}: {all}", file.display());
        for (_, path, message) in &expected {
            // `(document)` marks a problem with the file as a whole (no field).
            let path_named = path == "(document)" || all.contains(path.as_str());
            assert!(
                path_named && all.contains(message.as_str()),
                "{}: expected `{path}` and `{message}` in:\n{all}",
                file.display()
            );
        }
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            all.contains(&name),
            "{}: file not named:\n{all}",
            file.display()
        );
    }
}

#[test]
fn validate_json_lists_every_problem_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = corpus_dir().join("duplicate-node-name.yaml");
    let out = hostctl(
        &home,
        dir.path(),
        &["-o", "json", "validate", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["valid"], false);
    let first = &v["diagnostics"][0];
    assert_eq!(first["severity"], "error");
    assert!(first["line"].as_u64().is_some(), "{v}");
    assert!(first["path"].as_str().unwrap().starts_with("nodes["), "{v}");
    assert!(!first["fix"].as_str().unwrap().is_empty());
}

#[test]
fn init_keeps_an_existing_file_and_reuses_the_pki() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(hostctl(&home, dir.path(), &["init"]).status.success());
    std::fs::write(
        dir.path().join("hostctl.yaml"),
        topology::default_yaml() + "\n# mine\n",
    )
    .unwrap();
    let ca = std::fs::read(home.join("pki/agent/ca.key")).unwrap();
    let out = hostctl(&home, dir.path(), &["init"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("kept it"));
    let kept = std::fs::read_to_string(dir.path().join("hostctl.yaml")).unwrap();
    assert!(kept.ends_with("# mine\n"), "user's edit survives");
    assert_eq!(std::fs::read(home.join("pki/agent/ca.key")).unwrap(), ca);
}

#[test]
fn certs_list_shows_every_certificate_and_a_damaged_key_is_a_pki_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(hostctl(&home, dir.path(), &["init"]).status.success());
    let out = hostctl(&home, dir.path(), &["-o", "json", "certs", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let certs = v.as_array().unwrap();
    // agent CA, host, admin, Cluster Mesh CA, the lab root, and three CAs
    // per cluster.
    assert_eq!(certs.len(), 5 + 3 * 3, "{v}");
    let host = certs
        .iter()
        .find(|c| c["path"].as_str().unwrap().ends_with("agent/host.crt"))
        .unwrap();
    assert_eq!(host["roles"][0], "hostctl:host");
    assert!(
        host["notAfter"].is_string() || host["not_after"].is_string(),
        "{host}"
    );

    let key = home.join("pki/agent/ca.key");
    let bytes = std::fs::read(&key).unwrap();
    std::fs::write(&key, &bytes[..bytes.len() / 2]).unwrap();
    let out = hostctl(&home, dir.path(), &["certs", "list"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("ca.key"), "{}", text(&out));
}

#[test]
fn certs_list_without_a_pki_says_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = hostctl(&dir.path().join("none"), dir.path(), &["certs", "list"]);
    // Not damage (4): nothing has created it yet, a precondition (5).
    assert_eq!(out.status.code(), Some(5));
    assert!(text(&out).contains("hostctl"), "{}", text(&out));
}

#[test]
fn a_failure_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = hostctl(&dir.path().join("none"), dir.path(), &["certs", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    let message = first.trim_start_matches("error: ");
    assert_eq!(
        stderr.matches(message).count(),
        1,
        "the message is repeated:\n{stderr}"
    );
}

/// `hostctl … | head`: the reader closes the pipe early. A panic
/// ("failed printing to stdout") used to end these with exit 101.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let home = private_home();
    let out_dir = home.path().join("render");
    for args in [
        vec!["completion", "zsh"],
        vec!["render", "--out", out_dir.to_str().unwrap()],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // closed before hostctl writes a byte
        let out = Command::new(env!("CARGO_BIN_EXE_hostctl"))
            .args(&args)
            .current_dir(home.path())
            .env("HOSTCTL_HOME", home.path())
            .env_remove("HOSTCTL_TOPOLOGY")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// Every command installs a stderr logger (`HOSTCTL_LOG`, default `warn`):
/// the code's `tracing` lines reach the user instead of a missing
/// subscriber. Seen here through `doctor`'s Multipass calls (debug lines),
/// with the Multipass stand-in first on PATH.
#[test]
fn log_lines_reach_stderr_at_the_level_hostctl_log_asks() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/multipass-standin"),
        bin.join("multipass"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let doctor = |level: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostctl"));
        cmd.args(["doctor", "--provider", "multipass"])
            .current_dir(dir.path())
            .env("HOSTCTL_HOME", dir.path().join("home"))
            .env("PATH", &path)
            .env_remove("HOSTCTL_TOPOLOGY")
            .env_remove("HOSTCTL_LOG");
        if let Some(level) = level {
            cmd.env("HOSTCTL_LOG", level);
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stderr).into_owned()
    };
    let debug = doctor(Some("debug"));
    assert!(debug.contains("multipass call"), "{debug}");
    assert!(debug.contains("DEBUG"), "{debug}");
    let quiet = doctor(None);
    assert!(!quiet.contains("multipass call"), "{quiet}");
}

/// A home other users can read is refused before anything reads or writes
/// it (its snapshots hold every Secret of a cluster), with the fix.
#[test]
fn a_home_open_to_other_users_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    for args in [&["status"][..], &["certs", "list"], &["down"]] {
        let out = hostctl(&home, dir.path(), args);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("chmod 700"), "{}", text(&out));
    }
    // Commands that do not touch the home still work.
    assert!(
        hostctl(&home, dir.path(), &["completion", "bash"])
            .status
            .success()
    );
}

/// A temporary home hostctl accepts: closed to other users, as it
/// requires of every home.
fn private_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod 700");
    home
}

/// `--only` with a cluster the topology lacks names the clusters plainly
/// (it printed a Rust debug list), with exit 2.
#[test]
fn only_an_unknown_cluster_names_the_known_ones_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let out = hostctl(
        &dir.path().join("home"),
        dir.path(),
        &["up", "--provider", "local", "--only", "app3"],
    );
    let text = text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("no cluster app3 in the topology (clusters: mgmt, app1, app2)"),
        "{text}"
    );
    assert!(!text.contains('['), "{text}");
}

/// The fit report reaches the user: `validate` prints a row per node (and
/// `-o json` carries it), `render` writes `fit.txt`, and a topology that
/// starves a node gets a warning on stderr naming the memory to set.
#[test]
fn validate_and_render_print_the_fit_report_and_warn_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = hostctl(&home, dir.path(), &["validate"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for row in [
        "will it fit?",
        "mgmt-cp ",
        "mgmt-worker-0 ",
        "app2-cp (tainted)",
    ] {
        assert!(stdout.contains(row), "{row}: {stdout}");
    }
    let out = hostctl(&home, dir.path(), &["-o", "json", "validate"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["fit"]["nodes"].as_array().map(Vec::len), Some(6));
    assert_eq!(json["fit"]["nodes"][0]["allocatable"]["memoryMib"], 3362);

    // A 1 GiB mgmt worker: its base pods alone come near eviction.
    let small = topology::default_yaml().replacen("memory: 6GiB", "memory: 1GiB", 1);
    let file = dir.path().join("small.yaml");
    std::fs::write(&file, small).unwrap();
    let file = file.to_str().unwrap();
    let out = hostctl(&home, dir.path(), &["validate", file]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning is not an error: {stderr}"
    );
    assert!(
        stderr.contains("warning: mgmt-worker-0: expected use") && stderr.contains("set `memory: "),
        "{stderr}"
    );
    let out = hostctl(
        &home,
        dir.path(),
        &["--topology", file, "render", "--out", "d"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let fit = std::fs::read_to_string(dir.path().join("d/fit.txt")).unwrap();
    assert!(fit.contains("warning: mgmt-worker-0"), "{fit}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: mgmt-worker-0"));
}

#[test]
fn verify_prints_every_contract_as_stable_json_and_refuses_an_unknown_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let out = hostctl(&home, dir.path(), &["-o", "json", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // A fresh home has built nothing: every check is from the rendering,
    // and each cluster says why it was not checked live.
    assert_eq!(
        report["not_live"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    let checks = report["checks"].as_array().expect("checks");
    let contracts: std::collections::BTreeSet<&str> = checks
        .iter()
        .filter_map(|c| c["contract"].as_str())
        .collect();
    assert_eq!(
        contracts.into_iter().collect::<Vec<_>>(),
        [
            "BACKUPS", "C1", "C2", "C3", "C4", "C5", "C6", "MIRRORS", "VAULT"
        ]
    );
    // The contracts from the rendering; the SLO facts of a home that has
    // bootstrapped nothing say so.
    for c in checks {
        let fact =
            ["BACKUPS", "MIRRORS", "VAULT"].contains(&c["contract"].as_str().unwrap_or_default());
        match fact {
            true => assert_eq!(c["verdict"], "not-installed", "{c}"),
            false => assert_eq!(c["source"], "rendered", "{c}"),
        }
    }
    for c in checks {
        assert!(
            ["holds", "not-installed"].contains(&c["verdict"].as_str().unwrap_or_default()),
            "{c}"
        );
        assert!(
            !c["evidence"].as_array().expect("evidence").is_empty(),
            "{c}"
        );
    }
    let out = hostctl(&home, dir.path(), &["verify", "--cluster", "app9"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no cluster app9 in the topology"),
        "{}",
        text(&out)
    );
}
