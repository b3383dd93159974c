//! The QEMU provider (Linux): each node is a QEMU VM booted from a base
//! image with its own copy-on-write overlay, the node's CPUs and memory, and
//! a NoCloud seed carrying the same user-data the Multipass provider sends,
//! plus a `network-config` that pins the node's topology address.
//!
//! Networking: as root, a bridge `hq<h>` holding the host's address and a
//! tap per VM on it ([`net`]), so VMs and host talk on the topology's
//! network; otherwise QEMU's user-mode networking, where the guest's gateway
//! *is* the topology's host address (QEMU maps it to the host's loopback)
//! and the node agent's port is forwarded from a local port.
//!
//! KVM is used when it really works (see [`vm::probe_accel`]); otherwise
//! TCG software emulation, with a warning, since boots then take minutes.
//! QEMU runs daemonized with a pid file and QMP socket in the VM's
//! directory, and everything needed to boot it again is in
//! `$HOSTCTL_HOME/qemu/state.json`, so VMs outlive the `hostctl` that
//! started them and later commands find them.

mod boot_report;
pub mod channel;
pub mod guest;
pub mod image;
mod net;
mod seed;
pub mod state;
pub mod vm;

pub use net::NetNames;

use crate::provider::hostnet::{Ip, MacAddr};
use crate::provider::{
    AgentLayout, LaunchSpec, NodeNetwork, Provider, ProviderError, VmInfo, VmState, process,
};
use crate::state_file::StateFile;
use async_trait::async_trait;
use state::{NetworkRecord, QemuState, VmRecord};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::OnceCell;
use vm::{Accel, NicPlan, VmFiles};

/// How long a clean power-down may take before QEMU is told to quit.
const POWERDOWN_GRACE: Duration = Duration::from_secs(60);

/// How VMs are networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// Tap devices on a bridge the provider creates (needs root).
    Bridge,
    /// QEMU user-mode networking (no privileges, no host interfaces).
    User,
}

/// How to build a [`QemuProvider`]; defaults read the environment.
#[derive(Debug, Clone, Default)]
pub struct QemuOptions {
    /// The base image; else `$HOSTCTL_QEMU_IMAGE`.
    pub image: Option<PathBuf>,
    /// Else `$HOSTCTL_QEMU_NET`, else bridge as root and user otherwise.
    pub net: Option<NetMode>,
}

/// See the module documentation.
pub struct QemuProvider {
    dir: PathBuf,
    names: NetNames,
    options: QemuOptions,
    accel: OnceCell<Accel>,
    /// `qemu/state.json`; its changes are serialised between parallel launches.
    state_file: StateFile<QemuState>,
}

impl QemuProvider {
    pub fn new(home: &Path, options: QemuOptions) -> QemuProvider {
        QemuProvider {
            dir: home.join("qemu"),
            names: NetNames::for_home(home),
            options,
            accel: OnceCell::new(),
            state_file: StateFile::new(home.join("qemu").join("state.json")),
        }
    }

    /// The interface names this home uses.
    pub fn names(&self) -> &NetNames {
        &self.names
    }

    /// The recorded state, as a later `hostctl` process reads it.
    pub fn state(&self) -> Result<QemuState, ProviderError> {
        Ok(self.state_file.load()?)
    }

    async fn update<T>(
        &self,
        change: impl FnOnce(&mut QemuState) -> T,
    ) -> Result<T, ProviderError> {
        Ok(self.state_file.update(change).await?)
    }

    fn record(&self, name: &str) -> Result<VmRecord, ProviderError> {
        self.state()?
            .nodes
            .remove(name)
            .ok_or_else(|| ProviderError::NotFound(name.to_owned()))
    }

    /// The files of VM `name` (whether or not it exists).
    pub fn files(&self, name: &str) -> VmFiles {
        VmFiles::new(&self.dir.join(name))
    }

    fn mode(&self) -> NetMode {
        let from_env = crate::environment::QEMU_NET
            .string()
            .and_then(|v| match v.trim() {
                "bridge" => Some(NetMode::Bridge),
                "user" => Some(NetMode::User),
                _ => None,
            });
        self.options
            .net
            .or(from_env)
            .unwrap_or(if process::is_root() {
                NetMode::Bridge
            } else {
                NetMode::User
            })
    }

    fn qemu() -> Result<PathBuf, ProviderError> {
        vm::find_program("qemu-system-x86_64").ok_or_else(|| ProviderError::NotInstalled {
            tool: "qemu-system-x86_64".into(),
            hint: "install qemu-system-x86 (and qemu-utils)".into(),
            source: None,
        })
    }

    fn image(&self) -> Result<PathBuf, ProviderError> {
        self.options
            .image
            .clone()
            .or_else(|| crate::environment::QEMU_IMAGE.os().map(PathBuf::from))
            .ok_or_else(|| {
                ProviderError::Precondition(image::ImageError::NotConfigured.to_string())
            })
    }

    /// KVM when it works, else TCG; probed once per provider and said so.
    async fn accel(&self, qemu: &Path, kernel: Option<&Path>) -> Accel {
        *self
            .accel
            .get_or_init(|| async {
                let (accel, why) = vm::probe_accel(qemu, kernel).await;
                if let Some(why) = why {
                    tracing::warn!(
                        reason = %why,
                        "QEMU: using TCG software emulation (no usable KVM); VMs boot in minutes, not seconds"
                    );
                }
                accel
            })
            .await
    }

    fn nic(
        &self,
        network: &NetworkRecord,
        record: &VmRecord,
        name: &str,
    ) -> Result<NicPlan, ProviderError> {
        match (network, &record.tap, record.forwarded_port) {
            (NetworkRecord::Bridge { .. }, Some(tap), _) => Ok(NicPlan::Tap {
                ifname: tap.clone(),
            }),
            (
                NetworkRecord::User {
                    subnet,
                    host_address,
                },
                _,
                Some(port),
            ) => Ok(NicPlan::User {
                subnet: *subnet,
                host_address: *host_address,
                host_port: port,
            }),
            _ => Err(ProviderError::failed(
                "boot",
                name,
                "the VM was created for another network mode; delete it and run `hostctl up` again",
            )),
        }
    }

    fn network(&self) -> Result<NetworkRecord, ProviderError> {
        self.state()?.network.ok_or_else(|| {
            ProviderError::Precondition(
                "the QEMU node network is not set up: run `hostctl up --provider qemu`".into(),
            )
        })
    }

    /// Boots a recorded VM (its tap is recreated if a reboot removed it).
    async fn boot(&self, name: &str, record: &VmRecord) -> Result<(), ProviderError> {
        let qemu = Self::qemu()?;
        let network = self.network()?;
        if let (NetworkRecord::Bridge { bridge, .. }, Some(tap)) = (&network, &record.tap) {
            let ip = Ip::locate().map_err(|e| e.into_provider_error(name))?;
            net::ensure_tap(&ip, tap, bridge)
                .await
                .map_err(|e| e.into_provider_error(name))?;
        }
        let nic = self.nic(&network, record, name)?;
        let files = VmFiles::new(&record.dir);
        let accel = self.accel(&qemu, record.boot.kernel.as_deref()).await;
        let args = vm::argv(record, &files, accel, &nic);
        vm::spawn(&qemu, &args)
            .await
            .map_err(|e| ProviderError::failed_by("boot", name, e))
    }

    fn info_of(&self, name: &str, record: &VmRecord) -> VmInfo {
        let running = VmFiles::new(&record.dir).running_pid().is_some();
        VmInfo {
            name: name.to_owned(),
            state: if running {
                VmState::Running
            } else {
                VmState::Stopped
            },
            addresses: vec![record.address],
        }
    }

    /// Ends QEMU at once (QMP `quit`, SIGKILL if it does not answer).
    async fn kill(&self, files: &VmFiles) {
        let Some(pid) = files.running_pid() else {
            return;
        };
        if let Ok(mut qmp) = channel::Channel::qmp(&files.qmp(), Duration::from_secs(3)).await {
            let _ = qmp.call("quit", serde_json::json!({})).await;
        }
        if !process::wait_until_gone(Duration::from_secs(5), || files.running_pid().is_some()).await
        {
            process::signal(pid, rustix::process::Signal::KILL);
            process::wait_until_gone(Duration::from_secs(5), || files.running_pid().is_some())
                .await;
        }
    }

    /// Builds the VM's disk and seed and records it (not yet booted).
    async fn create(
        &self,
        spec: &LaunchSpec,
        network: &NetworkRecord,
    ) -> Result<VmRecord, ProviderError> {
        let name = spec.name.as_str();
        let user_data = spec.user_data.as_deref().ok_or_else(|| {
            ProviderError::Precondition(format!(
                "{name}: a QEMU VM needs cloud-init user-data to get its node agent"
            ))
        })?;
        let boot = image::resolve(&self.image()?)
            .await
            .map_err(|e| ProviderError::Precondition(e.to_string()))?;
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let files = VmFiles::new(&dir);
        let mac = MacAddr::for_node(name);
        let subnet = ipnet::Ipv4Net::new(spec.address, spec.prefix_len)
            .map_err(|e| ProviderError::failed_by("launch", name, e))?;
        let (tap, forwarded_port) = match network {
            NetworkRecord::Bridge { .. } => {
                (Some(self.names.tap(spec.address, subnet.trunc())), None)
            }
            NetworkRecord::User { .. } => (None, Some(free_port()?)),
        };
        let record = VmRecord {
            dir: dir.clone(),
            cpus: spec.cpus,
            memory_mib: spec.memory_bytes / (1024 * 1024),
            address: spec.address,
            prefix_len: spec.prefix_len,
            gateway: spec.gateway,
            mac: mac.to_string(),
            tap,
            forwarded_port,
            boot,
        };
        image::create_overlay(&record.boot, &files.overlay(), spec.disk_bytes)
            .await
            .map_err(|e| ProviderError::failed_by("launch", name, e))?;
        let network_config = network_config(&record, mac)
            .map_err(|e| ProviderError::failed_by("launch", name, e))?;
        let instance = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let meta = seed::meta_data(name, &instance);
        let seed_files = seed::SeedFiles {
            user_data,
            meta_data: &meta,
            network_config: Some(&network_config),
        };
        seed::write(&files.seed(), &dir.join("seed-staging"), &seed_files)
            .await
            .map_err(|e| ProviderError::failed_by("launch", name, e))?;
        Ok(record)
    }
}

/// The seed's `network-config`: the node's address on the NIC with the
/// provider's MAC. No gateway route: the host is on the same link, and
/// cloud-init 22.4 does not accept netplan's `to: default`.
fn network_config(record: &VmRecord, mac: MacAddr) -> Result<String, crate::provider::BoxError> {
    let address = ipnet::Ipv4Net::new(record.address, record.prefix_len)?;
    let stable = cloud_init::StableAddress {
        interface: cloud_init::network::InterfaceMatch::MacAddress(
            cloud_init::network::MacAddress::new(mac.0),
        ),
        address,
        gateway: None,
        nameservers: Vec::new(),
    };
    let doc = stable.network_config()?;
    Ok(serde_saphyr::to_string(&doc)?)
}

/// A free local port for user mode's forward to the node agent.
fn free_port() -> Result<u16, ProviderError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

#[async_trait]
impl Provider for QemuProvider {
    fn name(&self) -> &'static str {
        "qemu"
    }

    async fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
        Ok(self
            .state()?
            .nodes
            .iter()
            .map(|(name, record)| self.info_of(name, record))
            .collect())
    }

    async fn info(&self, name: &str) -> Result<Option<VmInfo>, ProviderError> {
        Ok(self.state()?.nodes.get(name).map(|r| self.info_of(name, r)))
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<VmInfo, ProviderError> {
        let name = spec.name.as_str();
        if self.state()?.nodes.contains_key(name) {
            return Err(ProviderError::NameTaken(name.to_owned()));
        }
        Self::qemu()?;
        let network = self.network()?;
        let record = self.create(spec, &network).await?;
        self.update(|s| s.nodes.insert(name.to_owned(), record.clone()))
            .await?;
        self.boot(name, &record).await?;
        Ok(self.info_of(name, &record))
    }

    async fn start(&self, name: &str) -> Result<(), ProviderError> {
        let record = self.record(name)?;
        if VmFiles::new(&record.dir).running_pid().is_some() {
            return Ok(());
        }
        self.boot(name, &record).await
    }

    /// A clean ACPI power-down, then `quit` if the guest ignores it.
    async fn stop(&self, name: &str) -> Result<(), ProviderError> {
        let record = self.record(name)?;
        let files = VmFiles::new(&record.dir);
        if files.running_pid().is_none() {
            return Ok(());
        }
        if let Ok(mut qmp) = channel::Channel::qmp(&files.qmp(), Duration::from_secs(3)).await {
            let _ = qmp.call("system_powerdown", serde_json::json!({})).await;
        }
        if !process::wait_until_gone(POWERDOWN_GRACE, || files.running_pid().is_some()).await {
            tracing::warn!(
                machine = name,
                "the guest ignored the power-down; quitting QEMU"
            );
            self.kill(&files).await;
        }
        Ok(())
    }

    /// Ends QEMU and removes the tap, the overlay and the seed; `purge`
    /// also removes the console log (the whole VM directory).
    async fn delete(&self, name: &str, purge: bool) -> Result<(), ProviderError> {
        let record = self.record(name)?;
        let files = VmFiles::new(&record.dir);
        self.kill(&files).await;
        if files.running_pid().is_some() {
            return Err(ProviderError::failed(
                "delete",
                name,
                "QEMU is still running",
            ));
        }
        if let Some(tap) = &record.tap {
            let ip = Ip::locate().map_err(|e| e.into_provider_error(name))?;
            net::remove_tap(&ip, tap)
                .await
                .map_err(|e| e.into_provider_error(name))?;
        }
        if purge {
            remove(&record.dir, true)?;
        } else {
            for path in [
                files.overlay(),
                files.seed(),
                files.qmp(),
                files.qga(),
                files.pidfile(),
            ] {
                remove(&path, false)?;
            }
        }
        self.update(|s| s.nodes.remove(name)).await?;
        Ok(())
    }

    async fn subnet(&self) -> Result<Option<ipnet::Ipv4Net>, ProviderError> {
        Ok(self.state()?.network.map(|n| match n {
            NetworkRecord::Bridge { subnet, .. } | NetworkRecord::User { subnet, .. } => subnet,
        }))
    }

    /// QEMU itself and the base image: without them no machine can boot.
    async fn preflight(&self) -> Result<(), ProviderError> {
        Self::qemu()?;
        image::resolve(&self.image()?)
            .await
            .map(drop)
            .map_err(|e| ProviderError::Precondition(e.to_string()))
    }

    async fn prepare(&self, network: &NodeNetwork) -> Result<(), ProviderError> {
        Self::qemu()?;
        let record = match self.mode() {
            NetMode::Bridge => {
                if !process::is_root() {
                    return Err(ProviderError::Precondition(format!(
                        "QEMU bridge networking needs root (it creates a bridge and tap devices): run with sudo, or set {}=user",
                        crate::environment::QEMU_NET.name
                    )));
                }
                let bridge = self.names.bridge();
                let ip = Ip::locate().map_err(|e| e.into_provider_error("qemu"))?;
                ip.ensure_bridge(&bridge, network.host_address, network.subnet)
                    .await
                    .map_err(|e| e.into_provider_error("qemu"))?;
                NetworkRecord::Bridge {
                    bridge,
                    subnet: network.subnet,
                    host_address: network.host_address,
                }
            }
            NetMode::User => NetworkRecord::User {
                subnet: network.subnet,
                host_address: network.host_address,
            },
        };
        self.update(|s| s.network = Some(record)).await
    }

    /// Removes the bridge once no VM is left; `purge` also the state.
    async fn teardown(&self, purge: bool) -> Result<(), ProviderError> {
        let state = self.state()?;
        if !state.nodes.is_empty() {
            return Ok(());
        }
        if let Some(NetworkRecord::Bridge { bridge, .. }) = &state.network {
            let ip = Ip::locate().map_err(|e| e.into_provider_error("qemu"))?;
            ip.remove_bridge(bridge)
                .await
                .map_err(|e| e.into_provider_error("qemu"))?;
        }
        if purge {
            remove(&self.dir, true)?;
        } else {
            self.update(|s| s.network = None).await?;
        }
        Ok(())
    }

    fn agent_layout(&self, _name: &str) -> AgentLayout {
        AgentLayout::default()
    }

    async fn boot_report(&self, name: &str) -> Option<String> {
        let files = self.files(name);
        Some(boot_report::report(&files.console(), &files.qga()).await)
    }
}

fn remove(path: &Path, dir: bool) -> Result<(), ProviderError> {
    let result = if dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}
