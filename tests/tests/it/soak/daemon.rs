//! The soak's real daemon and six real node agents, and the client the
//! test asks them with.

use super::*;

/// A child process killed (and reaped) on drop if it still runs.
pub(super) struct Process(pub(super) Child);

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The daemon, its agents, and the runtime the test talks to them with.
pub(super) struct Soak {
    pub(super) home: PathBuf,
    pub(super) scratch: PathBuf,
    pub(super) rt: tokio::runtime::Runtime,
    /// Dropped before the daemon: they would only retry against it.
    pub(super) agents: Vec<(String, Process)>,
    pub(super) daemon: Option<Process>,
}

impl Soak {
    pub(super) fn control<T, Fut>(
        &self,
        call: impl FnOnce(ControlClient) -> Fut,
    ) -> Result<T, String>
    where
        Fut: std::future::Future<Output = Result<T, host_agent::daemon::client::ClientError>>,
    {
        self.rt.block_on(async {
            let client = ControlClient::connect(&socket_path(&self.home))
                .await
                .map_err(|e| e.to_string())?;
            call(client).await.map_err(|e| e.to_string())
        })
    }

    pub(super) fn status(&self) -> Result<StatusResponse, String> {
        self.control(|mut c| async move { c.status().await })
    }

    pub(super) fn history(&self, node: &str) -> Vec<StoredReport> {
        self.control(|mut c| async move { c.history(node, 0).await })
            .unwrap_or_else(|e| panic!("history of {node}: {e}"))
    }

    /// What takes the home's space, for a failure message: its files, and
    /// files the daemon holds open though they were deleted.
    pub(super) fn describe_home(&self) -> String {
        let u = usage(&self.home);
        let in_files: u64 = files(&self.home).iter().map(|(len, _)| len).sum();
        let mut deleted = Vec::new();
        if let Some(pid) = self.daemon.as_ref().map(|d| d.0.id()) {
            let fds = PathBuf::from(format!("/proc/{pid}/fd"));
            for fd in std::fs::read_dir(&fds).into_iter().flatten().flatten() {
                let Ok(target) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                let target = target.display().to_string();
                if target.starts_with(&self.home.display().to_string())
                    && target.ends_with(" (deleted)")
                {
                    let len = std::fs::metadata(fd.path()).map(|m| m.len()).unwrap_or(0);
                    let fd = fd.file_name().to_string_lossy().into_owned();
                    deleted.push(format!("fd {fd} -> {target}, {} KiB", len / 1024));
                }
            }
        }
        format!(
            "{} KiB used of {} KiB, {} KiB of it in files ({}); held open by the daemon \
             though deleted: {}",
            u.used() / 1024,
            u.total / 1024,
            in_files / 1024,
            largest_files(&self.home),
            if deleted.is_empty() {
                "nothing".to_owned()
            } else {
                deleted.join(", ")
            }
        )
    }

    pub(super) fn daemon_log(&self) -> String {
        tail(&log_path(&self.home))
    }

    /// `hostctl init` (the PKI) and then `hostctl daemon` on loopback,
    /// logging as a daemon the CLI starts does; returns its first status.
    pub(super) fn start_daemon(&mut self, bins: &Binaries) -> StatusResponse {
        let topology = self.scratch.join("hostctl.yaml");
        let mut t = topology::default_topology();
        t.host_agent.listen = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        std::fs::write(&topology, t.to_yaml()).expect("write the topology");
        let hostctl = |args: &[&str]| {
            let mut cmd = Command::new(&bins.hostctl);
            cmd.arg("--home")
                .arg(&self.home)
                .arg("--topology")
                .arg(&topology)
                .args(args)
                .env_remove("HOSTCTL_HOME")
                .env_remove("HOSTCTL_TOPOLOGY");
            cmd
        };
        let init = hostctl(&["init", "-f"])
            .arg(&topology)
            .output()
            .expect("run hostctl init");
        assert!(
            init.status.success(),
            "hostctl init: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let log = log_path(&self.home);
        let out = logfile::open_for_start(&log, MAX_LOG_BYTES).expect("open daemon.log");
        let err = out.try_clone().expect("dup daemon.log");
        let mut daemon = Process(
            hostctl(&["daemon", "--listen", "127.0.0.1", "--port", "0"])
                // Nodes are told to dial loopback: nothing leaves the machine.
                .args(["--advertise", "127.0.0.1"])
                .env(host_agent::environment::DAEMON_LOG.name, &log)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start hostctl daemon"),
        );
        let status = poll::until(
            "the daemon's first status",
            START_WAIT,
            Duration::from_millis(100),
            || {
                if let Ok(Some(exit)) = daemon.0.try_wait() {
                    panic!("the daemon exited ({exit}):\n{}", tail(&log));
                }
                self.status().ok()
            },
            || self.daemon_log(),
        );
        self.daemon = Some(daemon);
        status
    }

    /// Six node agents with tokens the daemon issued, each under its own
    /// root outside the home, dialling the daemon on loopback.
    pub(super) fn start_agents(&mut self, bins: &Binaries, host: SocketAddr, enrol: SocketAddr) {
        let ca_pem = certs::Pki::open(&self.home)
            .expect("PKI")
            .agent_ca_pem()
            .to_owned();
        for node in nodes() {
            let name = node.name.as_str();
            let token = self
                .control(|mut c| async move { c.issue_token(name, Duration::from_secs(600)).await })
                .expect("issue a token");
            let root = self.scratch.join(&node.name);
            let logs = root.join("var/log/hostctl");
            std::fs::create_dir_all(&logs).expect("agent root");
            let layout = AgentLayout {
                state_dir: root.join("var/lib/hostctl-agent"),
                root: root.clone(),
                log_to_file: true,
                record_commands: true,
            };
            let mut config = NodeAgentConfig::new(NodeConfigInput {
                node: &node.name,
                cluster: &node.cluster,
                control_plane: node.role == topology::NodeRole::ControlPlane,
                node_address: Ipv4Addr::LOCALHOST,
                host_address: Ipv4Addr::LOCALHOST,
                host_port: host.port(),
                ca_pem: &ca_pem,
                token: Some(token.token),
                report_interval_seconds: REPORT_INTERVAL_SECONDS,
                buffer_capacity: 1000,
                layout: &layout,
            });
            // Ports chosen by the daemon and the agent: never fixed ones.
            config.document.host.enrol_endpoint = enrol.to_string();
            config.document.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            // Six agents share loopback: a fixed metrics port would collide.
            config.document.metrics_listen = None;
            let path = root.join("node-agent.yaml");
            std::fs::write(&path, config.to_yaml().expect("render")).expect("write config");
            let console =
                std::fs::File::create(logs.join("node-agent.console.log")).expect("agent log");
            let child = Command::new(&bins.node_agent)
                .arg("--config")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(console.try_clone().expect("dup agent log"))
                .stderr(console)
                .spawn()
                .expect("start node-agent");
            self.agents.push((node.name.clone(), Process(child)));
        }
    }

    pub(super) fn wait_until_all_report(&self) {
        for node in nodes() {
            poll::until(
                &format!("{} to enrol and report", node.name),
                ENROL_WAIT,
                Duration::from_millis(250),
                || (!self.history(&node.name).is_empty()).then_some(()),
                || self.agent_log(&node.name),
            );
        }
    }

    pub(super) fn agent_log(&self, node: &str) -> String {
        tail(
            &self
                .scratch
                .join(node)
                .join("var/log/hostctl/node-agent.console.log"),
        )
    }

    /// Control.Shutdown, then the process must exit, cleanly, and let go of
    /// the home's lock. Returns how long that took.
    pub(super) fn stop_daemon(&mut self) -> Duration {
        let asked = Instant::now();
        self.control(|mut c| async move { c.shutdown().await })
            .expect("Control.Shutdown");
        let Some(Process(child)) = self.daemon.as_mut() else {
            panic!("no daemon");
        };
        let exit = poll::until(
            "the daemon to exit after Control.Shutdown",
            STOP_WAIT,
            Duration::from_millis(100),
            || child.try_wait().ok().flatten(),
            || tail(&log_path(&self.home)),
        );
        let took = asked.elapsed();
        assert!(exit.success(), "the daemon exited with {exit}");
        assert!(
            !PidLock::is_held(&self.home).expect("pid lock"),
            "the daemon's lock is still held"
        );
        took
    }
}

impl Drop for Soak {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- daemon.log (tail)\n{}", self.daemon_log());
            for (node, _) in &self.agents {
                eprintln!(
                    "---- {node} node-agent.log (tail)\n{}",
                    self.agent_log(node)
                );
            }
        }
        self.agents.clear();
        self.daemon = None;
    }
}
