//! A fast-mode machine: a network namespace whose only NIC, `enp0s1`, is
//! one end of a veth pair plugged into the emulated bridge, and a root
//! directory the emulator's cloud-init, netplan and systemd stand-ins act
//! on. Booting takes about a second plus the DHCP exchange.
//!
//! The NIC is a veth, but netplan's `match: driver:` is evaluated against
//! `virtio_net`, the driver a Multipass VM's NIC has on Apple Silicon,
//! because that is what hostctl's netplan must match on a Mac.

use crate::cloud_init::{self, Run, System};
use crate::dhcp_client;
use crate::ip;
use crate::netplan::{self, Nic};
use crate::process;
use crate::state::{CloudInitResult, Machine, MachineState, Store};
use crate::supervisor;
use crate::units;
use anyhow::Context as _;
use rustix::process::Signal;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const NIC: &str = "enp0s1";
pub const DRIVER: &str = "virtio_net";
/// The environment systemd gives a system service.
const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The longest a single DHCP exchange may take, whatever `--timeout` says.
const DHCP_LIMIT: Duration = Duration::from_secs(120);

/// Creates the namespace and its veth pair on `bridge`, removing leftovers
/// of an interrupted attempt first.
pub fn create_links(m: &Machine, bridge: &str) -> anyhow::Result<()> {
    remove_links(m);
    let ns = m.netns.as_str();
    ip::run(&["netns", "add", ns])?;
    ip::run(&[
        "link",
        "add",
        &m.host_link,
        "type",
        "veth",
        "peer",
        "name",
        NIC,
        "netns",
        ns,
    ])?;
    ip::run(&["-n", ns, "link", "set", NIC, "address", &m.mac])?;
    ip::run(&["link", "set", &m.host_link, "master", bridge])?;
    ip::run(&["link", "set", &m.host_link, "up"])?;
    ip::run(&["-n", ns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Removes the veth pair and the namespace, killing what still runs in it.
pub fn remove_links(m: &Machine) {
    kill_namespace_processes(&m.netns);
    if ip::link_exists(&m.host_link) {
        ip::run_quiet(&["link", "del", &m.host_link]);
    }
    if ip::netns_exists(&m.netns) {
        ip::run_quiet(&["netns", "del", &m.netns]);
    }
}

fn kill_namespace_processes(ns: &str) {
    if !ip::netns_exists(ns) {
        return;
    }
    for pid in ip::netns_pids(ns) {
        process::signal(pid, Signal::KILL);
    }
    process::wait_until(Duration::from_secs(5), || {
        ip::netns_pids(ns).iter().all(|p| !process::alive(*p))
    });
}

/// Boots the machine: NIC up, init-local's fallback netplan, netplan
/// applied (DHCP), then either the first boot's cloud-init (`user_data`)
/// or, on later boots, the units `systemctl enable` enabled.
pub fn boot(
    store: &Store,
    bridge: &str,
    name: &str,
    user_data: Option<&str>,
    deadline: Instant,
) -> anyhow::Result<Machine> {
    let mut m = store.update(name, |m| {
        m.boots += 1;
        m.lease = None;
        m.static_addresses.clear();
        m.cloud_init = CloudInitResult::default();
    })?;
    let dir = store.machine_dir(name);
    let root = store.root_dir(name);
    std::fs::create_dir_all(&root)?;
    if !ip::netns_exists(&m.netns) || !ip::link_exists(&m.host_link) {
        create_links(&m, bridge)?;
    }
    ip::run(&["link", "set", &m.host_link, "master", bridge])?;
    ip::run(&["link", "set", &m.host_link, "up"])?;
    ip::run(&["-n", &m.netns, "link", "set", NIC, "up"])?;
    let mut run = Run::new(&dir);
    run.log(&format!("boot {} of {name}", m.boots));
    cloud_init::write_fallback_netplan(&root, &m.mac)?;
    let mut guest = Guest {
        store,
        machine: &mut m,
        root: root.clone(),
        dir,
        deadline,
    };
    // networkd at boot: the configuration already on the machine.
    guest.netplan_apply().context("bringing up the network")?;
    match user_data {
        Some(text) => cloud_init::first_boot(&mut run, &root, text, &mut guest),
        None => {
            // cloud-init runs runcmd once per instance; systemd starts the
            // enabled units at every boot.
            for unit in guest.machine.enabled_units.clone() {
                if let Err(e) = guest.start_unit(&unit, false) {
                    run.error(format!("systemd: starting {unit}: {e:#}"));
                }
            }
        }
    }
    run.finish(&root);
    let errors = run.errors.clone();
    store.update(name, |r| {
        r.state = MachineState::Running;
        r.cloud_init = CloudInitResult { done: true, errors };
    })
}

/// Stops the machine: its units (SIGTERM, then SIGKILL), anything else in
/// its namespace, its addresses. dnsmasq keeps the lease; the record
/// forgets it, as the next boot asks for a new one.
pub fn shutdown(store: &Store, name: &str) -> anyhow::Result<Machine> {
    let m = store
        .load(name)?
        .with_context(|| format!("no record for {name}"))?;
    let dir = store.machine_dir(name);
    supervisor::stop_all(&dir);
    kill_namespace_processes(&m.netns);
    if ip::netns_exists(&m.netns) {
        ip::run_quiet(&["-n", &m.netns, "addr", "flush", "dev", NIC]);
        ip::run_quiet(&["-n", &m.netns, "route", "flush", "table", "main"]);
        ip::run_quiet(&["-n", &m.netns, "link", "set", NIC, "down"]);
    }
    // /run is a tmpfs on a real machine: gone at power-off.
    let _ = std::fs::remove_dir_all(store.root_dir(name).join("run"));
    store.update(name, |r| {
        r.state = MachineState::Stopped;
        r.lease = None;
        r.static_addresses.clear();
    })
}

/// The machine's IPv4 addresses now: global ones in its namespace, the
/// DHCP lease first.
pub fn addresses(m: &Machine) -> Vec<Ipv4Addr> {
    let Ok(all) = ip::addresses(&m.netns) else {
        return Vec::new();
    };
    let mut out: Vec<Ipv4Addr> = all.iter().filter(|a| a.global).map(|a| a.address).collect();
    if let Some(lease) = &m.lease
        && let Some(i) = out.iter().position(|a| *a == lease.address)
    {
        let first = out.remove(i);
        out.insert(0, first);
    }
    out
}

/// The running machine as `runcmd` and systemd see it.
struct Guest<'a> {
    store: &'a Store,
    machine: &'a mut Machine,
    root: PathBuf,
    dir: PathBuf,
    deadline: Instant,
}

impl Guest<'_> {
    /// A line in the cloud-init output log (netplan's notes go there, as
    /// its warnings do in a real machine's journal).
    fn note(&self, line: &str) {
        crate::fsutil::append_line(&self.dir.join("cloud-init-output.log"), line);
    }

    fn save(&self) -> anyhow::Result<()> {
        let _lock = self.store.global_lock()?;
        self.store.save(self.machine)
    }
}

impl System for Guest<'_> {
    fn netplan_apply(&mut self) -> anyhow::Result<()> {
        let (ethernets, problems) = netplan::load(&self.root);
        problems.iter().for_each(|p| self.note(p));
        let nic = Nic {
            name: NIC,
            mac: &self.machine.mac,
            driver: DRIVER,
        };
        let want = netplan::decide(&ethernets, &nic);
        want.notes.iter().for_each(|n| self.note(n));
        match &want.id {
            Some(id) => self.note(&format!(
                "netplan: {NIC} configured by {id} (dhcp4: {}, addresses: {:?})",
                want.dhcp4, want.addresses
            )),
            None => self.note(&format!(
                "netplan: no definition matches {NIC}; it stays unconfigured"
            )),
        }
        let ns = self.machine.netns.clone();
        if want.dhcp4 && self.machine.lease.is_none() {
            let left = self.deadline.saturating_duration_since(Instant::now());
            let lease = dhcp_client::acquire(
                &self.store.dir,
                &ns,
                NIC,
                &self.machine.mac,
                &self.machine.name,
                self.machine.boots,
                left.clamp(Duration::from_secs(5), DHCP_LIMIT),
            )?;
            self.note(&format!("dhcp4: leased {}", lease.address));
            self.machine.lease = Some(lease);
        } else if !want.dhcp4
            && let Some(lease) = self.machine.lease.take()
        {
            let cidr = format!("{}/{}", lease.address, lease.prefix);
            ip::run_quiet(&["-n", &ns, "addr", "del", &cidr, "dev", NIC]);
            if let Some(r) = lease.router {
                let via = r.to_string();
                let metric = dhcp_client::DHCP_ROUTE_METRIC;
                ip::run_quiet(&[
                    "-n", &ns, "route", "del", "default", "via", &via, "dev", NIC, "metric", metric,
                ]);
            }
            self.note(&format!(
                "dhcp4 off: dropped {} (the lease stays held)",
                lease.address
            ));
        }
        let lease_addr = self.machine.lease.as_ref().map(|l| l.address);
        let wanted: Vec<String> = want
            .addresses
            .iter()
            .filter(|(a, _)| Some(*a) != lease_addr)
            .map(|(a, p)| format!("{a}/{p}"))
            .collect();
        for present in ip::addresses(&ns)? {
            let cidr = format!("{}/{}", present.address, present.prefix);
            if present.ifname == NIC
                && Some(present.address) != lease_addr
                && !wanted.contains(&cidr)
            {
                ip::run(&["-n", &ns, "addr", "del", &cidr, "dev", NIC])?;
            }
        }
        let present: Vec<String> = ip::addresses(&ns)?
            .iter()
            .map(|a| format!("{}/{}", a.address, a.prefix))
            .collect();
        for cidr in wanted.iter().filter(|c| !present.contains(c)) {
            ip::run(&["-n", &ns, "addr", "add", cidr, "dev", NIC])?;
        }
        for r in &want.routes {
            let via = r.via.to_string();
            let metric = r.metric.map(|m| m.to_string());
            let mut args = vec![
                "-n", &ns, "route", "replace", &r.to, "via", &via, "dev", NIC,
            ];
            if let Some(m) = &metric {
                args.extend(["metric", m.as_str()]);
            }
            ip::run(&args)?;
        }
        self.machine.static_addresses = wanted;
        self.save()
    }

    fn start_unit(&mut self, unit: &str, restart: bool) -> anyhow::Result<()> {
        let name = units::unit_name(unit);
        if restart {
            supervisor::stop(&self.dir, &name);
        } else if supervisor::supervisor_pid(&self.dir, &name).is_some() {
            return Ok(());
        }
        let path = units::find(&self.root, &name)?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let unit_file = units::parse(&text).with_context(|| name.clone())?;
        let program = units::resolve_program(&self.root, &unit_file.exec_start[0])?;
        let args = crate::agent_config::rewrite_args(&unit_file.exec_start[1..], &self.root)?;
        let mut env = vec![
            ("PATH".to_owned(), SERVICE_PATH.to_owned()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ];
        env.extend(unit_file.environment);
        let mut argv = vec![program.into_os_string()];
        argv.extend(args);
        supervisor::start(&supervisor::Spec {
            dir: self.dir.clone(),
            netns: self.machine.netns.clone(),
            unit: name,
            cwd: self.root.clone(),
            env,
            argv,
        })
    }

    fn enable_unit(&mut self, unit: &str) {
        let name = units::unit_name(unit);
        if !self.machine.enabled_units.contains(&name) {
            self.machine.enabled_units.push(name);
            if let Err(e) = self.save() {
                self.note(&format!("cannot record {unit} as enabled: {e:#}"));
            }
        }
    }
}
