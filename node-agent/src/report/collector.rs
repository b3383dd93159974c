//! Taking one health report: system figures from sysinfo plus the checks.
//!
//! One `System` is kept for the agent's lifetime and only CPU and memory are
//! refreshed, because sysinfo's full refresh (processes, components) would
//! dominate the agent's own CPU use. CPU usage is the average since the
//! previous collection, which is what sysinfo measures between refreshes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use proto::v1::{DiskUsage, HealthReport, SystemFigures};
use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, Networks, RefreshKind, System};

use super::checks::{Checks, Endpoints};
use crate::config::{Config, rooted};
use crate::exec::Runner;

/// Paths whose disk usage every report carries.
const DISK_PATHS: [&str; 2] = ["/", "/var/lib/etcd"];

/// Facts that do not change while the agent runs.
#[derive(Debug, Clone)]
struct Static {
    kernel: String,
    os: String,
    cpus: u32,
}

/// Produces `HealthReport`s (without `seq`/`agent_instance`, which the
/// scheduler assigns) for one node.
pub struct Collector {
    node: String,
    interval_seconds: u32,
    root: PathBuf,
    system: System,
    facts: Static,
    checks: Checks,
}

/// sysinfo could not read the system at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read system figures: {0}")]
pub struct CollectorError(String);

impl Collector {
    /// A collector for `config`'s node, running commands through `runner`.
    pub fn new(
        config: &Config,
        runner: Arc<dyn Runner>,
        endpoints: Endpoints,
    ) -> Result<Self, CollectorError> {
        let refresh = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing().with_usage())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        let system =
            System::new_with_specifics(refresh).map_err(|e| CollectorError(e.to_string()))?;
        let facts = Static {
            kernel: System::kernel_version().unwrap_or_default(),
            os: System::long_os_version().unwrap_or_default(),
            cpus: u32::try_from(system.cpus().len()).unwrap_or(u32::MAX),
        };
        Ok(Collector {
            node: config.node.clone(),
            interval_seconds: config.report_interval_seconds,
            root: config.root.clone(),
            system,
            facts,
            checks: Checks::new(&config.root, config.control_plane, runner, endpoints),
        })
    }

    /// Kernel release, for `Version`.
    pub fn kernel(&self) -> &str {
        &self.facts.kernel
    }

    /// OS name and version, for `Version`.
    pub fn os(&self) -> &str {
        &self.facts.os
    }

    /// Takes figures and runs checks now (blocking).
    pub fn collect(&mut self) -> HealthReport {
        let taken_at = SystemTime::now();
        self.system.refresh_cpu_usage();
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let load = System::load_average().unwrap_or_default();
        let system = SystemFigures {
            cpu_percent: f64::from(self.system.global_cpu_usage()),
            load1: load.one,
            load5: load.five,
            load15: load.fifteen,
            memory_total_bytes: self.system.total_memory(),
            memory_used_bytes: self.system.used_memory(),
            disks: disks(&self.root),
            uptime_seconds: System::uptime().unwrap_or_default(),
            boot_id: read_trimmed(&rooted(&self.root, "/proc/sys/kernel/random/boot_id"))
                .or_else(|| read_trimmed(Path::new("/proc/sys/kernel/random/boot_id")))
                .unwrap_or_default(),
            kernel: self.facts.kernel.clone(),
            os: self.facts.os.clone(),
            cpus: self.facts.cpus,
            addresses: addresses(),
        };
        let results = self.checks.run();
        HealthReport {
            taken_at: Some(proto::timestamp(taken_at)),
            node: self.node.clone(),
            system: Some(system),
            checks: results.checks,
            interval_seconds: self.interval_seconds,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            nearest_cert_expiry: results
                .nearest_cert
                .as_ref()
                .map(|n| proto::timestamp(n.not_after)),
            nearest_cert_path: results
                .nearest_cert
                .map(|n| n.path.display().to_string())
                .unwrap_or_default(),
            ..Default::default()
        }
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Usage of the filesystem holding each of `DISK_PATHS` (under `root`):
/// the mount with the longest mount point that is a prefix of the path.
fn disks(root: &Path) -> Vec<DiskUsage> {
    let mounts = Disks::new_with_refreshed_list().ok();
    DISK_PATHS
        .iter()
        .map(|p| {
            let real = rooted(root, p);
            let present = real.exists();
            let canonical = std::fs::canonicalize(&real).unwrap_or(real);
            let disk = mounts.as_ref().and_then(|m| {
                m.iter()
                    .filter(|d| canonical.starts_with(d.mount_point()))
                    .max_by_key(|d| d.mount_point().as_os_str().len())
            });
            DiskUsage {
                path: (*p).to_owned(),
                present,
                total_bytes: disk.filter(|_| present).map_or(0, |d| d.total_space()),
                available_bytes: disk.filter(|_| present).map_or(0, |d| d.available_space()),
            }
        })
        .collect()
}

/// Non-loopback addresses of all interfaces.
fn addresses() -> Vec<String> {
    let Ok(networks) = Networks::new_with_refreshed_list() else {
        return Vec::new();
    };
    let mut out: Vec<String> = networks
        .values()
        .flat_map(|n| n.ip_networks())
        .filter(|ip| !ip.addr.is_loopback())
        .map(|ip| ip.addr.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}
