//! The local provider: for Linux development and CI, a node is a node-agent
//! process in its own network namespace, joined by a veth pair to a bridge
//! that holds the host's address, with its own root directory on the host.
//! Faults are real: kill the agent, take its link down.
//!
//! Conventions (`<h>` = 6 hex digits of a hash of `$HOSTCTL_HOME`):
//! - bridge `hc<h>` in the root namespace, holding the host address;
//! - per node: netns `hc<h>-<node>`, host-side veth `hc<h>v<host part in hex>`
//!   (the node side is `eth0`), root `$HOSTCTL_HOME/local/<node>/root`,
//!   config `<root>/etc/hostctl/node-agent.yaml`, logs
//!   `<root>/var/log/hostctl/{supervisor,node-agent,node-agent.console}.log`
//!   (the last one holds what the agent printed before its own logging began);
//! - state in `$HOSTCTL_HOME/local/state.json`; liveness is checked live.

mod names;
pub(crate) mod net;
mod node;
mod state;
pub mod supervisor;

pub use names::Names;
pub use state::{LocalState, NodeRecord};

use crate::provider::hostnet::{Ip, NetError};
use crate::provider::{
    AgentLayout, LaunchSpec, NodeNetwork, Provider, ProviderError, VmInfo, VmState, process,
};
use crate::state_file::StateFile;
use async_trait::async_trait;
use net::NodeLink;
use node::{Launcher, NodeDir};
use state::NetworkRecord;
use std::path::{Path, PathBuf};

/// How to build a [`LocalProvider`]; defaults suit `hostctl` itself.
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// The node-agent binary; else `$HOSTCTL_NODE_AGENT`, else a
    /// `node-agent` beside the running executable.
    pub node_agent: Option<PathBuf>,
    /// The program with the hidden `local-supervise` command; else the
    /// running executable (only tests need another).
    pub supervisor_exe: Option<PathBuf>,
}

/// See the module documentation.
pub struct LocalProvider {
    local_dir: PathBuf,
    names: Names,
    options: LocalOptions,
    /// `local/state.json`; its changes are serialised between parallel launches.
    state_file: StateFile<LocalState>,
    /// Serialises bridge creation, so parallel launches do not both add it.
    net_lock: tokio::sync::Mutex<()>,
}

/// The local provider's network is one for all its nodes, so its failures
/// are the provider's ("network setup local failed: …").
impl From<NetError> for ProviderError {
    fn from(e: NetError) -> Self {
        e.into_provider_error("local")
    }
}

impl LocalProvider {
    /// Deletes `name`'s machine; the network goes with the last machine
    /// unless `keep_network` (a launch replacing a half-made node: another
    /// node's launch may be setting up on that network right now).
    async fn remove(
        &self,
        name: &str,
        purge: bool,
        keep_network: bool,
    ) -> Result<(), ProviderError> {
        let ip = self.privileged()?;
        let dir = self.dir(name);
        let record = self.state()?.nodes.get(name).cloned();
        if record.is_none() && !(purge && dir.dir.exists()) {
            return Err(ProviderError::NotFound(name.to_owned()));
        }
        if let Some(record) = &record {
            node::stop_supervisor(record, &dir).await;
            if net::netns_exists(&record.netns) {
                for pid in net::netns_pids(&ip, &record.netns)
                    .await
                    .unwrap_or_default()
                {
                    process::signal(pid, rustix::process::Signal::KILL);
                }
            }
            net::remove_node(&ip, &record.netns, &record.host_veth).await?;
        }
        if purge && dir.dir.exists() {
            std::fs::remove_dir_all(&dir.dir)?;
        }
        let name = name.to_owned();
        let last = self
            .update(move |s| {
                s.nodes.remove(&name);
                s.nodes.is_empty()
            })
            .await?;
        if last && !keep_network {
            ip.remove_bridge(&self.names.bridge()).await?;
            self.update(|s| s.network = None).await?;
        }
        Ok(())
    }

    pub fn new(home: &Path, options: LocalOptions) -> LocalProvider {
        LocalProvider {
            local_dir: home.join("local"),
            names: Names::for_home(home),
            options,
            state_file: StateFile::new(home.join("local").join("state.json")),
            net_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The names this home uses (tests read them to inject faults).
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The recorded state, as a later `hostctl` process would read it.
    pub fn state(&self) -> Result<LocalState, ProviderError> {
        Ok(self.state_file.load()?)
    }

    async fn update<T>(
        &self,
        change: impl FnOnce(&mut LocalState) -> T,
    ) -> Result<T, ProviderError> {
        Ok(self.state_file.update(change).await?)
    }

    fn dir(&self, node: &str) -> NodeDir {
        NodeDir::new(&self.local_dir, node)
    }

    /// Root and `ip`: everything that changes the system needs both.
    fn privileged(&self) -> Result<Ip, ProviderError> {
        let ip = Ip::locate()?;
        if !process::is_root() {
            return Err(ProviderError::Precondition(
                "the local provider needs root (it creates network namespaces): run with sudo"
                    .into(),
            ));
        }
        Ok(ip)
    }

    fn launcher(&self, ip: &Ip) -> Result<Launcher, ProviderError> {
        let supervisor_exe = match &self.options.supervisor_exe {
            Some(p) => p.clone(),
            None => current_exe()?,
        };
        Ok(Launcher {
            supervisor_exe,
            ip: ip.program().to_path_buf(),
            node_agent: self.node_agent()?,
        })
    }

    fn node_agent(&self) -> Result<PathBuf, ProviderError> {
        let beside_us = current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("node-agent")));
        let candidate = self
            .options
            .node_agent
            .clone()
            .or_else(|| crate::environment::NODE_AGENT.os().map(PathBuf::from))
            .or(beside_us);
        match candidate {
            Some(path) if path.is_file() => Ok(path),
            other => Err(ProviderError::Precondition(format!(
                "node-agent binary not found{}: build it (cargo build -p node-agent), \
                 or pass --node-agent-bin / set {}",
                other
                    .map(|p| format!(" at {}", p.display()))
                    .unwrap_or_default(),
                crate::environment::NODE_AGENT.name
            ))),
        }
    }

    async fn ensure_network(&self, ip: &Ip, network: &NodeNetwork) -> Result<(), ProviderError> {
        let bridge = self.names.bridge();
        let _guard = self.net_lock.lock().await;
        ip.ensure_bridge(&bridge, network.host_address, network.subnet)
            .await?;
        let record = NetworkRecord {
            bridge,
            subnet: network.subnet,
            host_address: network.host_address,
        };
        self.update(|s| s.network = Some(record)).await
    }

    async fn create_link(&self, ip: &Ip, record: &NodeRecord) -> Result<(), ProviderError> {
        net::create_node(
            ip,
            &NodeLink {
                netns: &record.netns,
                host_veth: &record.host_veth,
                bridge: &self.names.bridge(),
                address: record.address,
                prefix_len: record.prefix_len,
                gateway: record.gateway,
            },
        )
        .await?;
        Ok(())
    }

    async fn start_supervisor(
        &self,
        ip: &Ip,
        name: &str,
        record: &NodeRecord,
    ) -> Result<(), ProviderError> {
        let pid = self
            .launcher(ip)?
            .start(name, record, &self.dir(name))
            .await?;
        let name = name.to_owned();
        self.update(move |s| {
            if let Some(r) = s.nodes.get_mut(&name) {
                r.supervisor_pid = Some(pid);
            }
        })
        .await
    }

    fn vm_info(&self, name: &str, record: &NodeRecord) -> VmInfo {
        let netns = net::netns_exists(&record.netns);
        let running = node::supervisor_alive(record, &self.dir(name));
        let state = match (netns, running) {
            (true, true) => VmState::Running,
            (true, false) => VmState::Stopped,
            (false, _) => VmState::Other("network namespace missing".into()),
        };
        VmInfo {
            name: name.to_owned(),
            state,
            addresses: vec![record.address],
        }
    }

    async fn do_launch(&self, ip: &Ip, spec: &LaunchSpec) -> Result<VmInfo, ProviderError> {
        let dir = self.dir(&spec.name);
        dir.write_config(&spec.node_agent_config)?;
        let record = self.record(&spec.name)?;
        self.create_link(ip, &record).await?;
        self.start_supervisor(ip, &spec.name, &record).await?;
        Ok(self.vm_info(&spec.name, &record))
    }

    /// A node whose launch was cut off (an `up` killed between recording
    /// the name and writing the agent's configuration): it has a record but
    /// no configuration, so starting it could never work — it was
    /// restarted forever, failing to read its config, and never enrolled.
    /// Such a node does not exist as far as callers are concerned, and the
    /// next launch replaces it.
    fn half_made(&self, name: &str) -> Result<bool, ProviderError> {
        Ok(self.state()?.nodes.contains_key(name) && !self.dir(name).config().exists())
    }

    fn record(&self, name: &str) -> Result<NodeRecord, ProviderError> {
        self.state()?
            .nodes
            .get(name)
            .cloned()
            .ok_or_else(|| ProviderError::NotFound(name.to_owned()))
    }
}

/// The running executable by path. After a rebuild or upgrade replaced the
/// file, Linux reports it as `<path> (deleted)`; the path itself then holds
/// the new build, which is what a newly started supervisor should run.
fn current_exe() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
}

#[async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
        // Without `ip` none of this provider's machines can exist: say so.
        Ip::locate()?;
        Ok(self
            .state()?
            .nodes
            .iter()
            .map(|(name, record)| self.vm_info(name, record))
            .collect())
    }

    async fn info(&self, name: &str) -> Result<Option<VmInfo>, ProviderError> {
        Ip::locate()?;
        if self.half_made(name)? {
            return Ok(None);
        }
        Ok(self
            .state()?
            .nodes
            .get(name)
            .map(|record| self.vm_info(name, record)))
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<VmInfo, ProviderError> {
        let ip = self.privileged()?;
        // Resolve the binaries before creating anything.
        self.launcher(&ip)?;
        let network = NodeNetwork {
            subnet: ipnet::Ipv4Net::new(spec.address, spec.prefix_len)
                .map_err(|e| ProviderError::Precondition(format!("{}: {e}", spec.name)))?
                .trunc(),
            host_address: spec.gateway,
        };
        // The network stays: other nodes may be launching on it now.
        if self.half_made(&spec.name)? {
            tracing::info!(node = %spec.name, "replacing a node whose launch was cut off");
            self.remove(&spec.name, false, true).await?;
        }
        self.ensure_network(&ip, &network).await?;
        let record = NodeRecord {
            netns: self.names.netns(&spec.name),
            host_veth: self.names.host_veth(spec.address, network.subnet),
            address: spec.address,
            prefix_len: spec.prefix_len,
            gateway: spec.gateway,
            root: self.dir(&spec.name).root(),
            supervisor_pid: None,
        };
        if record.host_veth.len() > names::IFNAME_MAX {
            return Err(ProviderError::Precondition(format!(
                "interface name {} is longer than {} bytes",
                record.host_veth,
                names::IFNAME_MAX
            )));
        }
        let name = spec.name.clone();
        let taken = self
            .update(move |s| {
                let taken = s.nodes.contains_key(&name);
                if !taken {
                    s.nodes.insert(name, record);
                }
                taken
            })
            .await?;
        if taken {
            return Err(ProviderError::NameTaken(spec.name.clone()));
        }
        match self.do_launch(&ip, spec).await {
            Ok(info) => Ok(info),
            Err(e) => {
                // Leave nothing half-made behind; the root dir stays for its logs.
                if let Err(cleanup) = self.delete(&spec.name, false).await {
                    tracing::warn!(node = %spec.name, "cleanup after failed launch: {cleanup}");
                }
                Err(e)
            }
        }
    }

    async fn start(&self, name: &str) -> Result<(), ProviderError> {
        let ip = self.privileged()?;
        let record = self.record(name)?;
        if node::supervisor_alive(&record, &self.dir(name)) {
            return Ok(());
        }
        // Without its supervisor the node runs nothing, and its network may
        // be missing (namespaces do not survive a reboot; the directory
        // does) or half-made (an `up` killed while it was creating the
        // link: the namespace exists, its route to the host does not). So
        // the link is made anew — `create_link` removes what an earlier
        // attempt left — and the agent never starts where the host is
        // unreachable.
        if net::netns_exists(&record.netns) {
            for pid in net::netns_pids(&ip, &record.netns)
                .await
                .unwrap_or_default()
            {
                process::signal(pid, rustix::process::Signal::KILL);
            }
        }
        let network = NodeNetwork {
            subnet: ipnet::Ipv4Net::new(record.address, record.prefix_len)
                .map_err(|e| ProviderError::Precondition(format!("{name}: {e}")))?
                .trunc(),
            host_address: record.gateway,
        };
        self.ensure_network(&ip, &network).await?;
        self.create_link(&ip, &record).await?;
        self.start_supervisor(&ip, name, &record).await
    }

    async fn stop(&self, name: &str) -> Result<(), ProviderError> {
        self.privileged()?;
        let record = self.record(name)?;
        node::stop_supervisor(&record, &self.dir(name)).await;
        Ok(())
    }

    async fn delete(&self, name: &str, purge: bool) -> Result<(), ProviderError> {
        self.remove(name, purge, false).await
    }

    /// The local provider builds the network the topology declares, so it
    /// has no other subnet to report.
    async fn subnet(&self) -> Result<Option<ipnet::Ipv4Net>, ProviderError> {
        Ok(None)
    }

    async fn prepare(&self, network: &NodeNetwork) -> Result<(), ProviderError> {
        let ip = self.privileged()?;
        // A missing node-agent binary is a precondition too: say so before
        // the network, the PKI and the daemon are set up for nothing.
        self.launcher(&ip)?;
        let state = self.state()?;
        if let Some(current) = &state.network
            && (current.subnet != network.subnet || current.host_address != network.host_address)
        {
            if !state.nodes.is_empty() {
                return Err(ProviderError::Precondition(format!(
                    "the local node network is {} (host {}) and has nodes; \
                     run `hostctl down` before changing it to {}",
                    current.subnet, current.host_address, network.subnet
                )));
            }
            ip.remove_bridge(&current.bridge).await?;
        }
        self.ensure_network(&ip, network).await
    }

    async fn teardown(&self, purge: bool) -> Result<(), ProviderError> {
        let ip = self.privileged()?;
        for name in self.state()?.nodes.into_keys() {
            self.delete(&name, purge).await?;
        }
        // Namespaces of this home that the state lost track of.
        let prefix = format!("{}-", self.names.bridge());
        for ns in net::netns_list(&ip).await? {
            if ns.starts_with(&prefix) {
                for pid in net::netns_pids(&ip, &ns).await.unwrap_or_default() {
                    process::signal(pid, rustix::process::Signal::KILL);
                }
                ip.run(&["netns", "del", &ns]).await?;
            }
        }
        ip.remove_bridge(&self.names.bridge()).await?;
        if purge {
            if self.local_dir.exists() {
                std::fs::remove_dir_all(&self.local_dir)?;
            }
        } else {
            self.update(|s| s.network = None).await?;
        }
        Ok(())
    }

    fn agent_layout(&self, name: &str) -> AgentLayout {
        let root = self.dir(name).root();
        AgentLayout {
            state_dir: root.join(node::STATE_DIR_REL),
            root,
            log_to_file: true,
            record_commands: true,
        }
    }
}
