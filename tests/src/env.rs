//! One isolated local environment per test: its own `$HOSTCTL_HOME` (a temp
//! dir), its own node network `10.251.<n>.0/24` (private addresses that only
//! exist on the bridge and in the namespaces the test creates), its own
//! topology file, and a cleanup that always runs `hostctl down --purge` and
//! removes anything that survived it.

use crate::bins::Binaries;
use host_agent::daemon::ControlClient;
use host_agent::provider::local::{LocalState, Names};
use host_agent::state_file::StateDocument as _;
use ipnet::Ipv4Net;
use proto::v1::StoredReport;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// See the module documentation.
pub struct LocalEnv {
    home: tempfile::TempDir,
    pub topology: PathBuf,
    pub subnet: Ipv4Net,
    pub bins: Binaries,
    names: Names,
    finished: bool,
}

impl LocalEnv {
    /// An environment on `10.251.<net>.0/24` with the given nodes of the
    /// built-in topology (host .1, nodes at their usual host numbers).
    pub fn new(net: u8, nodes: &[&str]) -> LocalEnv {
        crate::suite::enter();
        crate::init_crypto();
        let subnet = Ipv4Net::new(Ipv4Addr::new(10, 251, net, 0), 24).expect("valid /24");
        let in_use = run_ip(&["-o", "-4", "addr", "show", "to", &subnet.to_string()]);
        assert!(
            in_use.trim().is_empty(),
            "{subnet} is already used on this host (a leftover of an earlier run?):\n{in_use}"
        );
        let home = tempfile::Builder::new()
            .prefix("hostctl-e2e-")
            .tempdir()
            .expect("temp home");
        // hostctl refuses a home other users can read (it holds keys).
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod the temp home");
        let topology = home.path().join("hostctl.yaml");
        std::fs::write(&topology, topology_yaml(subnet, nodes)).expect("write topology");
        let names = Names::for_home(home.path());
        LocalEnv {
            home,
            topology,
            subnet,
            bins: Binaries::locate(),
            names,
            finished: false,
        }
    }

    /// Starts a real etcd on `node` as kubeadm would (`Debian's 3.4`):
    /// inside its namespace, kubeadm's ports (so the agent's defaults
    /// apply), data in `<root>/var/lib/etcd` (restored data there is
    /// opened, not replaced), its PKI minted at kubeadm's paths under
    /// `<root>/etc/kubernetes/pki/etcd`.
    pub fn start_node_etcd(&self, node: &str) -> test_support::etcd::Etcd {
        use test_support::etcd::{Etcd, EtcdSpec, mint_etcd_pki_for};
        let record = self
            .local_state()
            .nodes
            .get(node)
            .cloned()
            .unwrap_or_else(|| panic!("{node} is not in the local state"));
        let address = IpAddr::V4(record.address);
        let pki = mint_etcd_pki_for(&record.root, &[address]).expect("etcd PKI");
        let spec = EtcdSpec {
            name: node.to_owned(),
            client_port: 2379,
            peer_port: 2380,
            data_dir: record.root.join("var/lib/etcd"),
            address,
            netns: Some(record.netns),
        };
        Etcd::start(&pki, &spec).expect("etcd in the node's namespace")
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The host's address on the node network.
    pub fn host_address(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + 1)
    }

    /// Runs `hostctl` against this environment's home and topology.
    pub fn hostctl(&self, args: &[&str]) -> Output {
        self.hostctl_with_env(args, &[])
    }

    /// [`LocalEnv::hostctl`] with extra environment variables (e.g. `OTEL_*`).
    pub fn hostctl_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(&self.bins.hostctl)
            .envs(env.iter().copied())
            .arg("--home")
            .arg(self.home())
            .arg("--topology")
            .arg(&self.topology)
            .args(args)
            .env("HOSTCTL_NODE_AGENT", &self.bins.node_agent)
            // By path, not /proc/self/exe: a rebuild during a test replaces
            // the file under a running hostctl.
            .env(host_agent::environment::DAEMON_EXE.name, &self.bins.hostctl)
            .env_remove("HOSTCTL_HOME")
            .env_remove("HOSTCTL_TOPOLOGY")
            .output()
            .expect("run hostctl")
    }

    /// Connected, not stale, and reported within the last `secs` seconds.
    pub fn is_fresh(node: &Value, secs: f64) -> bool {
        node["connected"] == true
            && node["stale"] == false
            && node["last_report_age_seconds"]
                .as_f64()
                .is_some_and(|age| age <= secs)
    }

    /// Runs `hostctl` and returns its stdout; panics with both streams if
    /// it fails.
    pub fn hostctl_ok(&self, args: &[&str]) -> String {
        let out = self.hostctl(args);
        assert!(
            out.status.success(),
            "hostctl {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `hostctl up --nodes-only --provider local` with a short report
    /// interval: the node plane only (the bootstrap suite runs the rest).
    pub fn up(&self, interval_seconds: u32) -> String {
        let args = Self::up_args(interval_seconds, 90);
        self.hostctl_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The arguments of [`LocalEnv::up`] with an enrolment timeout of
    /// `timeout_seconds`, for tests that run `up` themselves.
    pub fn up_args(interval_seconds: u32, timeout_seconds: u32) -> Vec<String> {
        let interval = interval_seconds.to_string();
        let timeout = timeout_seconds.to_string();
        [
            "up",
            "--nodes-only",
            "--provider",
            "local",
            "--report-interval",
            &interval,
            "--timeout",
            &timeout,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Every node of `hostctl status -o json`, by name.
    pub fn status_nodes(&self) -> Vec<Value> {
        let text = self.hostctl_ok(&["status", "-o", "json"]);
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status -o json is not JSON ({e}):\n{text}"));
        v["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["nodes"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// One node's entry in `hostctl status -o json`.
    pub fn status_of(&self, node: &str) -> Option<Value> {
        self.status_nodes().into_iter().find(|n| n["name"] == node)
    }

    /// Polls `hostctl status -o json` until `node`'s entry satisfies
    /// `pred`, returning it; panics after `limit` naming `what`.
    pub fn wait_status(
        &self,
        node: &str,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        crate::poll::until(
            &format!("{node}: {what}"),
            limit,
            Duration::from_millis(200),
            || self.status_of(node).filter(|v| pred(v)),
            || format!("{:#}", self.status_of(node).unwrap_or_default()),
        )
    }

    /// The local provider's state file as recorded by `hostctl`.
    pub fn local_state(&self) -> LocalState {
        LocalState::load(&self.home().join("local/state.json")).expect("local state")
    }

    /// The host end of a node's veth pair (take it down to cut the node off).
    pub fn host_veth(&self, node: &str) -> String {
        self.local_state()
            .nodes
            .get(node)
            .map(|r| r.host_veth.clone())
            .unwrap_or_else(|| panic!("{node} is not in the local state"))
    }

    /// `$HOSTCTL_HOME/local/<node>`.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.home().join("local").join(node)
    }

    /// The pid of the node's running agent, as its supervisor recorded it.
    pub fn agent_pid(&self, node: &str) -> Option<i32> {
        read_pid(&self.node_dir(node).join("node-agent.pid"))
    }

    pub fn supervisor_pid(&self, node: &str) -> Option<i32> {
        read_pid(&self.node_dir(node).join("supervisor.pid"))
    }

    /// The daemon's stored reports for `node`, oldest first.
    pub fn history(&self, node: &str) -> Vec<StoredReport> {
        self.with_control(|mut c| async move { c.history(node, 0).await.expect("History") })
    }

    /// Asks the daemon to stop and waits until its lock is released.
    pub fn stop_daemon(&self) {
        self.with_control(|mut c| async move { c.shutdown().await.expect("Shutdown") });
        crate::poll::until(
            "the daemon to exit",
            Duration::from_secs(15),
            Duration::from_millis(100),
            || {
                (!host_agent::daemon::lifecycle::PidLock::is_held(self.home()).unwrap_or(true))
                    .then_some(())
            },
            || host_agent::daemon::lifecycle::log_tail(&self.home().join("daemon.log")),
        );
    }

    fn with_control<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(ControlClient) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let socket = host_agent::daemon::config::socket_path(self.home());
        rt.block_on(async {
            let client = ControlClient::connect(&socket)
                .await
                .expect("control socket");
            f(client).await
        })
    }

    /// Interfaces and namespaces of this home that still exist.
    pub fn leftovers(&self) -> Vec<String> {
        let prefix = self.names.bridge();
        let mut out: Vec<String> = run_ip(&["netns", "list"])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{prefix}-")))
            .map(|n| format!("netns {n}"))
            .collect();
        out.extend(
            run_ip(&["-o", "link", "show"])
                .lines()
                .filter_map(|l| l.split(':').nth(1))
                .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
                .filter(|n| n.starts_with(&prefix))
                .map(|n| format!("link {n}")),
        );
        out
    }

    /// `hostctl down --purge`, then asserts nothing of this home is left.
    pub fn finish(mut self) {
        self.finished = true;
        self.hostctl_ok(&["down", "--purge"]);
        let left = self.leftovers();
        self.force_cleanup();
        assert!(left.is_empty(), "down --purge left behind: {left:?}");
    }

    /// Removes whatever `down` did not, so a failed test never leaks
    /// namespaces or links into the next one.
    fn force_cleanup(&self) {
        for item in self.leftovers() {
            let mut parts = item.splitn(2, ' ');
            match (parts.next(), parts.next()) {
                (Some("netns"), Some(ns)) => {
                    for pid in run_ip(&["netns", "pids", ns]).split_whitespace() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                    run_ip(&["netns", "del", ns]);
                }
                (Some("link"), Some(link)) => {
                    run_ip(&["link", "del", link]);
                }
                _ => {}
            }
        }
    }

    fn dump_logs(&self) {
        let mut files = vec![self.home().join("daemon.log")];
        for node in self.local_state().nodes.keys() {
            let dir = self.node_dir(node).join("root/var/log/hostctl");
            for f in ["supervisor.log", "node-agent.log", "node-agent.console.log"] {
                files.push(dir.join(f));
            }
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("---- {} (last 30 lines)", f.display());
            for l in &lines[lines.len().saturating_sub(30)..] {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for LocalEnv {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if std::thread::panicking() {
            self.dump_logs();
        }
        let out = self.hostctl(&["down", "--purge"]);
        if !out.status.success() {
            eprintln!(
                "cleanup: hostctl down --purge failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.force_cleanup();
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Runs `ip` and returns stdout; failures return what was printed, since
/// the callers only look for names.
fn run_ip(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The built-in topology moved onto `subnet`, keeping only `nodes` (and the
/// clusters they belong to). The daemon binds the host address, not every
/// interface, so tests running side by side do not share a port.
pub(crate) fn topology_yaml(subnet: Ipv4Net, nodes: &[&str]) -> String {
    let mut t = topology::default_topology();
    t.network.cidr = subnet;
    let host = Ipv4Addr::from(u32::from(subnet.network()) + 1);
    t.host_agent.listen = Some(IpAddr::V4(host));
    t.nodes.retain(|n| nodes.contains(&n.name.as_str()));
    let used: Vec<String> = t.nodes.iter().map(|n| n.cluster.clone()).collect();
    t.clusters.retain(|c| used.contains(&c.name));
    assert_eq!(t.nodes.len(), nodes.len(), "unknown node in {nodes:?}");
    t.to_yaml()
}
