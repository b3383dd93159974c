//! The emulator's memory: one JSON record per machine under
//! `<state>/machines/<name>/machine.json`, plus the locks.
//!
//! Layout of the state directory:
//!
//! ```text
//! lock                         global lock: records and network setup
//! locks/<name>.lock            held for a whole operation on one machine
//! network.json                 this state directory owns the bridge
//! dnsmasq.{pid,leases,log}     the DHCP server
//! dhcpd_leases                 the leases in macOS bootpd's format
//! machines/<name>/machine.json the record
//! machines/<name>/user-data    the user-data given at launch (0600)
//! machines/<name>/root/        fast mode: the machine's file system
//! machines/<name>/cloud-init-output.log, agent.log, supervisor.log
//! machines/<name>/units/       fast mode: supervisor pid files
//! machines/<name>/vm/          VM mode: overlay, seed, sockets, console
//! ```
//!
//! Lock order: a machine lock first, then the global lock, never the other
//! way round; the global lock is held only for short critical sections (a
//! DHCP exchange or a boot never runs under it).

use crate::config::Mode;
use crate::fsutil::{self, FileLock};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// A machine's state as `list` and `info` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MachineState {
    Starting,
    Running,
    Stopped,
    Deleted,
}

impl MachineState {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineState::Starting => "Starting",
            MachineState::Running => "Running",
            MachineState::Stopped => "Stopped",
            MachineState::Deleted => "Deleted",
        }
    }
}

/// The DHCP lease of the current boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    /// The client identifier used (hex), which dnsmasq keys the lease by.
    pub client_id: String,
    pub expires_unix: u64,
}

/// cloud-init's outcome for the current boot (fast mode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudInitResult {
    pub done: bool,
    pub errors: Vec<String>,
}

/// Everything the emulator remembers about one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub name: String,
    pub image: String,
    pub mode: Mode,
    pub cpus: u32,
    pub memory: u64,
    pub disk: u64,
    /// The default NIC's MAC, chosen at launch, kept for the machine's life.
    pub mac: String,
    pub state: MachineState,
    /// Boots so far; part of the DHCP client identifier (see `dhcp_client`).
    pub boots: u32,
    pub netns: String,
    /// The veth host end (fast) or tap (VM) on the bridge.
    pub host_link: String,
    pub lease: Option<Lease>,
    /// Addresses netplan added besides the lease (CIDR), as last applied.
    #[serde(default)]
    pub static_addresses: Vec<String>,
    /// Units `systemctl enable` enabled: systemd starts them at every boot.
    #[serde(default)]
    pub enabled_units: Vec<String>,
    #[serde(default)]
    pub cloud_init: CloudInitResult,
    pub created_unix: u64,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    pub fn global_lock(&self) -> anyhow::Result<FileLock> {
        FileLock::exclusive(&self.dir.join("lock"))
    }

    pub fn machine_lock(&self, name: &str) -> anyhow::Result<FileLock> {
        FileLock::exclusive(&self.dir.join("locks").join(format!("{name}.lock")))
    }

    pub fn machines_dir(&self) -> PathBuf {
        self.dir.join("machines")
    }

    pub fn machine_dir(&self, name: &str) -> PathBuf {
        self.machines_dir().join(name)
    }

    /// A fast-mode machine's file system.
    pub fn root_dir(&self, name: &str) -> PathBuf {
        self.machine_dir(name).join("root")
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.machine_dir(name).join("machine.json")
    }

    pub fn load(&self, name: &str) -> anyhow::Result<Option<Machine>> {
        let path = self.record_path(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("damaged record {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, machine: &Machine) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(machine)?;
        fsutil::write_atomic(&self.record_path(&machine.name), text.as_bytes(), 0o600)
    }

    /// Every machine with a record, by name.
    pub fn all(&self) -> anyhow::Result<Vec<Machine>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(self.machines_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).context("reading the machines directory"),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(m) = self.load(&name)? {
                out.push(m);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes the record and every file of the machine.
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let dir = self.machine_dir(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
        }
    }

    /// Changes one record under the global lock (read fresh, changed, saved).
    pub fn update(&self, name: &str, change: impl FnOnce(&mut Machine)) -> anyhow::Result<Machine> {
        let _lock = self.global_lock()?;
        let mut m = self
            .load(name)?
            .with_context(|| format!("no record for {name}"))?;
        change(&mut m);
        self.save(&m)?;
        Ok(m)
    }
}
