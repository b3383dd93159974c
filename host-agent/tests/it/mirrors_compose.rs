//! The rendered compose projects checked against the Compose
//! specification's own JSON schema (fixtures/mirrors/compose-spec.json,
//! source and commit in fixtures/mirrors/SOURCES.md) with python3's
//! jsonschema, and by the real `docker compose config` where Docker runs.

use host_agent::mirrors::compose::{self, HostArch};
use host_agent::mirrors::layout::Layout;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use test_support::skip::skip_without_docker;

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mirrors/compose-spec.json")
}

fn projects(home: &Path) -> Vec<(&'static str, Value)> {
    let layout = Layout::new(home);
    vec![
        ("harbor-amd64", compose::harbor(&layout, HostArch::Amd64)),
        ("harbor-arm64", compose::harbor(&layout, HostArch::Arm64)),
        ("nexus", compose::nexus(&layout)),
    ]
}

#[test]
fn rendered_compose_files_satisfy_the_compose_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for (name, value) in projects(dir.path()) {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, compose::to_yaml(&value)).expect("write");
        files.push(file);
    }
    assert_compose_schema(&files);
}

#[test]
fn memory_limits_fit_the_six_gigabyte_budget_and_nexus_heap_is_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sum = 0u64;
    for (name, value) in projects(dir.path()) {
        if name == "harbor-arm64" {
            continue;
        }
        for (service, s) in value["services"].as_object().expect("services") {
            let limit = s["mem_limit"]
                .as_str()
                .unwrap_or_else(|| panic!("{service} has no limit"));
            sum += limit.trim_end_matches('m').parse::<u64>().expect("MiB");
        }
    }
    assert_eq!(sum, compose::total_memory_mib());
    assert!(sum <= compose::MEMORY_BUDGET_MIB, "{sum} MiB");
    let layout = Layout::new(dir.path());
    let nexus = compose::nexus(&layout);
    let jvm = nexus["services"]["nexus"]["environment"]["INSTALL4J_ADD_VM_PARAMS"]
        .as_str()
        .expect("heap cap");
    assert!(
        jvm.contains("-Xmx1g") && jvm.contains("-XX:MaxDirectMemorySize=1g"),
        "{jvm}"
    );
    // Harbor on arm64 asks for emulation explicitly, on amd64 not at all.
    let arm = compose::harbor(&layout, HostArch::Arm64);
    let amd = compose::harbor(&layout, HostArch::Amd64);
    for (service, s) in arm["services"].as_object().expect("services") {
        assert_eq!(s["platform"], "linux/amd64", "{service}");
        assert!(amd["services"][service].get("platform").is_none());
    }
    // The installer's capability drop.
    for (service, s) in amd["services"].as_object().expect("services") {
        assert_eq!(s["cap_drop"], serde_json::json!(["ALL"]), "{service}");
    }
    // Data lives under the home, never inside a container's layer.
    let data = dir.path().join("mirrors");
    let volumes = serde_json::to_string(&amd).expect("json");
    assert!(volumes.contains(&data.join("harbor-data/registry").display().to_string()));
    assert_eq!(amd["services"]["proxy"]["ports"][0], "8443:8443");
    assert_eq!(nexus["services"]["nexus"]["ports"][0], "8081:8081");
}

/// The real Compose CLI's own reading, where it exists.
#[test]
fn docker_compose_config_accepts_them_where_docker_exists() {
    let test = "mirrors_compose::docker_compose_config";
    let usable = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        skip_without_docker(
            test,
            "the docker CLI with its compose plugin is not installed here",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, value) in projects(dir.path()) {
        // `config` reads env files; Harbor's `prepare` writes them before
        // compose ever runs, so empty ones stand in here.
        for s in value["services"].as_object().expect("services").values() {
            for env in s["env_file"].as_array().into_iter().flatten() {
                let env = Path::new(env.as_str().expect("path"));
                std::fs::create_dir_all(env.parent().expect("dir")).expect("mkdir");
                std::fs::write(env, "").expect("env file");
            }
        }
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, compose::to_yaml(&value)).expect("write");
        let out = Command::new("docker")
            .args(["compose", "-f"])
            .arg(&file)
            .args(["config", "--quiet", "--no-interpolate"])
            .output()
            .expect("docker compose runs");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Each file is read back as YAML (what docker compose reads), then
/// validated against the Compose specification's schema; a failure prints
/// the schema's complaint and its path (also the object store's compose
/// file, storage_compose).
pub(crate) fn assert_compose_schema(files: &[PathBuf]) {
    let script = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
for f in sys.argv[2:]:
    doc = yaml.safe_load(open(f))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    for e in errors:
        print(f"{f}: {list(e.path)}: {e.message}")
    if errors:
        sys.exit(1)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(schema())
        .args(files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
