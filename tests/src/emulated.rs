//! One environment on the emulated Mac network: hostctl's real Multipass
//! provider driving `tests/multipass-emulator` (first on `PATH` as
//! `multipass`), with the topology as written (declared 192.168.64.0/24,
//! `addressing: provider`) on the emulator's vmnet, 192.168.252.0/24. Holds
//! the emulator's lock (one emulated network per machine) and always tears
//! the emulated network down.

use crate::bins::Binaries;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The lock every user of the emulated network holds (the emulator's own
/// tests take it too).
const LOCK: &str = "/run/multipass-emulator.lock";

/// See the module documentation.
pub struct Emulated {
    home: tempfile::TempDir,
    pub topology: PathBuf,
    /// `MULTIPASS_EMULATOR_STATE`.
    pub state: PathBuf,
    bin: PathBuf,
    pub bins: Binaries,
    /// The size-optimised node agent embedded in user-data.
    pub node_agent: PathBuf,
    /// Extra environment for every command (stand-ins, leases file, mode).
    pub vars: Vec<(String, String)>,
    _lock: std::fs::File,
}

/// The node agent Multipass user-data carries (`make test` builds it).
fn node_dist_agent() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/node-dist/node-agent")
}

/// Whether the emulated network can run here; says why not (and fails when
/// `HOSTCTL_E2E_REQUIRED` is set).
pub fn can_run(test: &str) -> bool {
    if !crate::can_run_netns(test) {
        return false;
    }
    let missing: Vec<String> = [
        ("dnsmasq", Path::new("/usr/sbin/dnsmasq").exists()),
        (
            "target/node-dist/node-agent (make node-agent-dist)",
            node_dist_agent().exists(),
        ),
        ("target/debug/multipass-emulator", emulator().exists()),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(what, _)| what.to_owned())
    .collect();
    if missing.is_empty() {
        return true;
    }
    crate::skip(test, &format!("missing {missing:?}"))
}

fn emulator() -> PathBuf {
    Binaries::locate()
        .hostctl
        .with_file_name("multipass-emulator")
}

impl Emulated {
    /// An environment whose topology is the built-in default with only
    /// `nodes` (all six when empty).
    pub fn new(nodes: &[&str]) -> Emulated {
        crate::suite::enter();
        crate::init_crypto();
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK)
            .expect("open the emulator lock");
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .expect("lock the emulated network");
        let home = tempfile::Builder::new()
            .prefix("hostctl-mp-")
            .tempdir()
            .expect("temp home");
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod home");
        let mut t = topology::default_topology();
        // As on a Mac, the daemon listens on every address (the vmnet
        // bridge only appears with the first machine); a port of its own
        // keeps it clear of other suites' daemons.
        t.host_agent.port = 17443;
        if !nodes.is_empty() {
            t.nodes.retain(|n| nodes.contains(&n.name.as_str()));
            let used: Vec<String> = t.nodes.iter().map(|n| n.cluster.clone()).collect();
            t.clusters.retain(|c| used.contains(&c.name));
        }
        let topology = home.path().join("hostctl.yaml");
        std::fs::write(&topology, t.to_yaml()).expect("write topology");
        let bin = home.path().join("bin");
        std::fs::create_dir(&bin).expect("bin dir");
        std::os::unix::fs::symlink(emulator(), bin.join("multipass")).expect("symlink");
        let state = home.path().join("multipass-emulator");
        let vars = vec![
            (
                "MULTIPASS_EMULATOR_STATE".to_owned(),
                state.display().to_string(),
            ),
            (
                "HOSTCTL_DHCP_LEASES".to_owned(),
                state.join("dhcpd_leases").display().to_string(),
            ),
        ];
        let env = Emulated {
            home,
            topology,
            state,
            bin,
            bins: Binaries::locate(),
            node_agent: node_dist_agent(),
            vars,
            _lock: lock,
        };
        // A leftover of a killed run would hold the bridge.
        env.multipass(&["__teardown"]);
        env
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    fn path_var(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// `hostctl` against this home and topology, the emulator on `PATH`.
    pub fn hostctl(&self, args: &[&str]) -> Output {
        Command::new(&self.bins.hostctl)
            .arg("--home")
            .arg(self.home())
            .arg("--topology")
            .arg(&self.topology)
            .args(args)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .env("PATH", self.path_var())
            .env("HOSTCTL_NODE_AGENT", &self.node_agent)
            .env(host_agent::environment::DAEMON_EXE.name, &self.bins.hostctl)
            .env_remove("HOSTCTL_HOME")
            .env_remove("HOSTCTL_TOPOLOGY")
            .output()
            .expect("run hostctl")
    }

    /// [`Emulated::hostctl`] that must succeed; returns stdout and stderr.
    pub fn hostctl_ok(&self, args: &[&str]) -> String {
        let out = self.hostctl(args);
        let text = format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "hostctl {args:?} failed ({}):\n{text}\n{}",
            out.status,
            self.logs()
        );
        text
    }

    /// The emulator itself, as `multipass`.
    pub fn multipass(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("multipass"))
            .args(args)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run the multipass emulator")
    }

    /// `multipass info NAME --format json`'s entry.
    pub fn info(&self, name: &str) -> serde_json::Value {
        let out = self.multipass(&["info", name, "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["info"][name].clone()
    }

    /// The IPv4 addresses the emulator reports for `name`, lease first.
    pub fn addresses(&self, name: &str) -> Vec<String> {
        self.info(name)["ipv4"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    }

    /// The daemon's stored reports for `node`, oldest first.
    pub fn history(&self, node: &str) -> Vec<proto::v1::StoredReport> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let socket = host_agent::daemon::config::socket_path(self.home());
        rt.block_on(async {
            let mut client = host_agent::daemon::ControlClient::connect(&socket)
                .await
                .expect("control socket");
            client.history(node, 0).await.expect("History")
        })
    }

    /// What to read when something went wrong: the daemon's log and every
    /// machine's logs, tails.
    pub fn logs(&self) -> String {
        let mut files = vec![
            self.home().join("daemon.log"),
            self.state.join("dnsmasq.log"),
        ];
        if let Ok(machines) = std::fs::read_dir(self.state.join("machines")) {
            for m in machines.flatten() {
                for f in ["cloud-init-output.log", "supervisor.log", "agent.log"] {
                    files.push(m.path().join(f));
                }
                files.push(m.path().join("root/var/log/hostctl/node-agent.log"));
            }
        }
        let mut out = String::new();
        for f in files {
            if let Ok(text) = std::fs::read_to_string(&f) {
                let tail: Vec<&str> = text.lines().rev().take(25).collect();
                out.push_str(&format!("---- {} (last lines)\n", f.display()));
                for l in tail.into_iter().rev() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.hostctl(&["down", "--purge"]);
        self.multipass(&["__teardown"]);
    }
}
