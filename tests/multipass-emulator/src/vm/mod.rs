//! VM mode: each machine is a real QEMU VM of the test image
//! (`tools/test-image/build.sh`), booted with the launch's user-data on a
//! NoCloud seed, its NIC a tap on the emulated bridge, so the real
//! cloud-init, netplan, networkd and systemd run, against the same DHCP
//! server as fast mode.
//!
//! `launch` waits (bounded by `--timeout`) for the guest agent to answer,
//! for a DHCP lease on the machine's MAC and for `cloud-init status
//! --wait`, as Multipass waits for cloud-init. Addresses come from the
//! guest agent (`guest-network-get-interfaces`), the newest lease of the
//! machine's MAC first.

pub mod channel;
pub mod qemu;
pub mod seed;

use crate::config::Config;
use crate::launch::BootTimeout;
use crate::leases;
use crate::state::{CloudInitResult, Machine, MachineState, Store};
use crate::{ip, process};
use anyhow::{Context as _, bail};
use rustix::process::Signal;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a guest gets to power off after ACPI shutdown.
const POWERDOWN_GRACE: Duration = Duration::from_secs(60);

fn files(store: &Store, name: &str) -> qemu::Files {
    qemu::Files {
        dir: store.machine_dir(name).join("vm"),
    }
}

fn image_dir(cfg: &Config) -> anyhow::Result<PathBuf> {
    cfg.image.clone().context(
        "VM mode needs MULTIPASS_EMULATOR_IMAGE (a directory with rootfs.img, vmlinuz, initrd.img)",
    )
}

/// Refuses a launch early when the image is not usable.
pub fn check_image(cfg: &Config) -> anyhow::Result<()> {
    let dir = image_dir(cfg)?;
    for f in ["rootfs.img", "vmlinuz", "initrd.img"] {
        if !dir.join(f).is_file() {
            bail!(
                "{} has no {f} (build it with tools/test-image/build.sh)",
                dir.display()
            );
        }
    }
    Ok(())
}

/// First boot: overlay, seed, tap, then [`boot`].
pub fn launch(
    store: &Store,
    cfg: &Config,
    name: &str,
    user_data: &str,
    deadline: Instant,
) -> anyhow::Result<Machine> {
    let image = image_dir(cfg)?;
    let m = store
        .load(name)?
        .with_context(|| format!("no record for {name}"))?;
    let f = files(store, name);
    std::fs::create_dir_all(&f.dir)?;
    qemu::create_overlay(&f, &image.join("rootfs.img"), m.disk)?;
    let instance = format!("{:08x}", u32::from_be_bytes(crate::names::random_bytes()));
    seed::write(
        &f.seed(),
        &f.dir.join("stage"),
        user_data,
        &seed::meta_data(name, &instance),
    )?;
    boot(store, cfg, name, deadline)
}

/// Later boots: the same overlay and seed (same instance id, so cloud-init
/// does not run per-instance modules such as `runcmd` again).
pub fn start(
    store: &Store,
    cfg: &Config,
    name: &str,
    deadline: Instant,
) -> anyhow::Result<Machine> {
    boot(store, cfg, name, deadline)
}

fn boot(store: &Store, cfg: &Config, name: &str, deadline: Instant) -> anyhow::Result<Machine> {
    let image = image_dir(cfg)?;
    let m = store.update(name, |m| {
        m.boots += 1;
        m.lease = None;
    })?;
    let f = files(store, name);
    if !ip::link_exists(&m.host_link) {
        ip::run(&["tuntap", "add", "dev", &m.host_link, "mode", "tap"])?;
    }
    ip::run(&["link", "set", &m.host_link, "master", &cfg.bridge])?;
    ip::run(&["link", "set", &m.host_link, "up"])?;
    if f.running_pid().is_none() {
        let _ = std::fs::remove_file(f.qga());
        let _ = std::fs::remove_file(f.qmp());
        let (kernel, initrd) = (image.join("vmlinuz"), image.join("initrd.img"));
        let plan = qemu::Plan {
            name,
            cpus: m.cpus,
            memory_mib: (m.memory >> 20).max(128),
            kernel: &kernel,
            initrd: &initrd,
            tap: &m.host_link,
            mac: &m.mac,
            accel: qemu::accel(&store.dir, &kernel),
        };
        let booted_at = crate::fsutil::now_unix();
        qemu::spawn(&qemu::argv(&plan, &f))?;
        if !channel::wait_for_guest(&f.qga(), deadline) {
            return Err(BootTimeout(format!(
                "the guest agent of {name} (console: {})",
                f.console().display()
            ))
            .into());
        }
        // Multipass needs the default NIC's address before it reports a
        // machine as up; so does the caller.
        let leased =
            process::wait_until(deadline.saturating_duration_since(Instant::now()), || {
                leases::newest_for_mac(&store.dir, &m.mac).is_some_and(|l| l.expires > booted_at)
            });
        if !leased {
            return Err(BootTimeout(format!("a DHCP lease for {name}")).into());
        }
    }
    leases::refresh_mirror(&store.dir)?;
    let (code, out) = channel::guest_exec(&f.qga(), &["cloud-init", "status", "--wait"], deadline)
        .map_err(|e| BootTimeout(format!("cloud-init in {name}: {e:#}")))?;
    let errors = if code == 0 {
        Vec::new()
    } else {
        vec![format!("cloud-init status exit {code}: {}", out.trim())]
    };
    store.update(name, |r| {
        r.state = MachineState::Running;
        r.cloud_init = CloudInitResult { done: true, errors };
    })
}

/// ACPI power-down through QMP, bounded; then `quit`; then SIGKILL.
pub fn shutdown(store: &Store, name: &str) -> anyhow::Result<Machine> {
    let f = files(store, name);
    if let Some(pid) = f.running_pid() {
        if let Ok(mut qmp) = channel::Channel::qmp(&f.qmp()) {
            let _ = qmp.call("system_powerdown", serde_json::json!({}));
        }
        if !process::wait_until(POWERDOWN_GRACE, || !process::alive(pid)) {
            if let Ok(mut qmp) = channel::Channel::qmp(&f.qmp()) {
                let _ = qmp.call("quit", serde_json::json!({}));
            }
            if !process::wait_until(Duration::from_secs(10), || !process::alive(pid)) {
                process::signal(pid, Signal::KILL);
                process::wait_until(Duration::from_secs(5), || !process::alive(pid));
            }
        }
    }
    store.update(name, |r| {
        r.state = MachineState::Stopped;
        r.lease = None;
    })
}

/// Ends the VM at once (QMP `quit`, then SIGKILL): for teardown, where
/// nothing on the guest needs a clean shutdown.
pub fn kill(store: &Store, name: &str) {
    let f = files(store, name);
    if let Some(pid) = f.running_pid() {
        if let Ok(mut qmp) = channel::Channel::qmp(&f.qmp()) {
            let _ = qmp.call("quit", serde_json::json!({}));
        }
        if !process::wait_until(Duration::from_secs(5), || !process::alive(pid)) {
            process::signal(pid, Signal::KILL);
            process::wait_until(Duration::from_secs(5), || !process::alive(pid));
        }
    }
}

/// Removes the tap.
pub fn remove_links(m: &Machine) {
    if ip::link_exists(&m.host_link) {
        ip::run_quiet(&["link", "del", &m.host_link]);
    }
}

/// The guest's addresses, the newest lease of its MAC first; also brings
/// the bootpd mirror up to date (the guest's own DHCP client renews
/// without telling the emulator).
pub fn addresses(store: &Store, m: &Machine) -> Vec<Ipv4Addr> {
    let mut ips = channel::guest_ipv4(&files(store, &m.name).qga()).unwrap_or_default();
    let _ = leases::refresh_mirror(&store.dir);
    if let Some(lease) = leases::newest_for_mac(&store.dir, &m.mac)
        && let Some(i) = ips.iter().position(|a| *a == lease.address)
    {
        let first = ips.remove(i);
        ips.insert(0, first);
    }
    ips
}

/// The overlay's size on disk.
pub fn disk_used(store: &Store, m: &Machine) -> u64 {
    std::fs::metadata(files(store, &m.name).overlay())
        .map(|md| md.len())
        .unwrap_or(0)
}
