//! Shared set-up for the Multipass provider tests: a private directory per
//! test with a `multipass` symlink to the stand-in under `tests/fixtures`
//! (the stand-in keeps its state and call log beside the symlink, so tests
//! run in parallel without touching the process environment).

use host_agent::provider::LaunchSpec;
use host_agent::provider::multipass::{MultipassConfig, MultipassProvider};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const GIB: u64 = 1 << 30;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One stand-in instance: its directory and the symlink the provider runs.
pub struct Standin {
    pub dir: PathBuf,
}

impl Standin {
    pub fn new(tag: &str) -> Standin {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("multipass-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let standin =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/multipass-standin");
        std::os::unix::fs::symlink(standin, dir.join("multipass")).unwrap();
        Standin { dir }
    }

    pub fn program(&self) -> PathBuf {
        self.dir.join("multipass")
    }

    /// The configuration tests start from: the stand-in, short timeouts,
    /// user-data written inside the test directory.
    pub fn config(&self) -> MultipassConfig {
        MultipassConfig {
            program: self.program(),
            launch_timeout: Duration::from_secs(120),
            command_timeout: Duration::from_secs(30),
            query_timeout: Duration::from_secs(30),
            scratch_dir: self.dir.join("scratch"),
            ..MultipassConfig::default()
        }
    }

    pub fn provider(&self) -> MultipassProvider {
        MultipassProvider::new(self.config())
    }

    /// Writes `control.json` (failure class, sleeps, output format).
    pub fn control(&self, control: Value) {
        std::fs::write(self.dir.join("control.json"), control.to_string()).unwrap();
    }

    /// Seeds `state.json` with instances `{name: {"state", "ipv4", ...}}`.
    pub fn seed(&self, instances: Value) {
        let state = serde_json::json!({"instances": instances, "next_host": 50});
        std::fs::write(self.dir.join("state.json"), state.to_string()).unwrap();
    }

    /// Every recorded call, in the order they finished.
    pub fn calls(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.dir.join("calls.jsonl")) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Every recorded argv.
    pub fn argvs(&self) -> Vec<Vec<String>> {
        self.calls()
            .iter()
            .map(|c| {
                c["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    /// The recorded calls whose command (argv[0]) is `command`.
    pub fn calls_of(&self, command: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c["argv"][0] == command)
            .collect()
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A node spec as `up` would pass it (addresses are the topology's).
pub fn spec(name: &str) -> LaunchSpec {
    LaunchSpec {
        name: name.to_owned(),
        cpus: 2,
        memory_bytes: 4 * GIB,
        disk_bytes: 40 * GIB,
        address: "192.168.64.10".parse().unwrap(),
        prefix_len: 24,
        gateway: "192.168.64.1".parse().unwrap(),
        node_agent_config: "node: {}\n".to_owned(),
        user_data: Some(format!(
            "#cloud-config\nhostname: {name}\nwrite_files:\n  - path: /etc/hostctl/agent.yaml\n"
        )),
    }
}
