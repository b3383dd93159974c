//! The host itself: enough memory and disk for the topology, the host
//! agent's ports free, and the local provider's preconditions.

use super::{Check, gib};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use topology::Topology;

/// Free memory against the sum of the nodes' memory: fail when it cannot
/// fit, warn when it leaves the host less than 2 GiB.
pub fn memory(topology: &Topology, nodes: &[String]) -> Check {
    let need: u64 = selected(topology, nodes).map(|n| n.memory.bytes()).sum();
    let free = match sysinfo::System::new() {
        Ok(mut sys) => {
            sys.refresh_memory();
            sys.available_memory()
        }
        Err(e) => return Check::warn("memory", format!("cannot read the host's memory: {e}")),
    };
    let text = format!("{} available, the nodes need {}", gib(free), gib(need));
    if free < need {
        Check::fail("memory", text)
    } else if free - need < 2 << 30 {
        Check::warn("memory", format!("{text}; little is left for the host"))
    } else {
        Check::ok("memory", text)
    }
}

/// Free disk where the machines' disks live (`dir`) against the nodes'
/// disks. Multipass allocates sparsely, so short is a warning, not a fail.
pub fn disk(topology: &Topology, nodes: &[String], dir: &Path) -> Check {
    let need: u64 = selected(topology, nodes).map(|n| n.disk.bytes()).sum();
    let disks = match sysinfo::Disks::new_with_refreshed_list() {
        Ok(d) => d,
        Err(e) => return Check::warn("disk", format!("cannot read the host's disks: {e}")),
    };
    let dir = existing_ancestor(dir);
    let Some(disk) = disks
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
    else {
        return Check::warn("disk", format!("no disk found for {}", dir.display()));
    };
    let free = disk.available_space();
    let text = format!(
        "{} free on {}, the nodes' disks total {}",
        gib(free),
        disk.mount_point().display(),
        gib(need)
    );
    if free < need {
        Check::warn(
            "disk",
            format!("{text} (disks grow as used; they may fill it)"),
        )
    } else {
        Check::ok("disk", text)
    }
}

fn existing_ancestor(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|a| a.exists())
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

fn selected<'a>(
    topology: &'a Topology,
    nodes: &'a [String],
) -> impl Iterator<Item = &'a topology::Node> + 'a {
    topology.nodes().iter().filter(|n| nodes.contains(&n.name))
}

/// The host agent's ports: free, or held by this home's own daemon.
/// `addrs` are the Host and Enrolment listeners.
pub fn ports(addrs: &[SocketAddr], own_daemon_running: bool) -> Check {
    let mut busy = Vec::new();
    for addr in addrs {
        if let Err(e) = TcpListener::bind(addr) {
            match e.kind() {
                std::io::ErrorKind::AddrInUse => busy.push(format!("{addr} in use")),
                // The address is not on this host yet (the provider's
                // bridge comes with `up`): nothing can hold the port.
                std::io::ErrorKind::AddrNotAvailable => {}
                _ => busy.push(format!("{addr}: {e}")),
            }
        }
    }
    let list = addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match (busy.is_empty(), own_daemon_running) {
        (true, _) => Check::ok("ports", format!("{list} free")),
        (false, true) => Check::ok("ports", format!("{list} held by this home's daemon")),
        (false, false) => Check::fail(
            "ports",
            format!(
                "{} (another program, or another home's daemon)",
                busy.join("; ")
            ),
        ),
    }
}

/// Root and `ip`, which the local provider needs for namespaces.
pub fn local_preconditions() -> Vec<Check> {
    let root = if rustix::process::geteuid().is_root() {
        Check::ok("root", "running as root")
    } else {
        Check::fail(
            "root",
            "the local provider creates network namespaces: run with sudo",
        )
    };
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map_or_else(
            || Check::fail("ip", "`ip` not found: install iproute2"),
            |p| Check::ok("ip", (*p).to_owned()),
        );
    vec![root, ip]
}
