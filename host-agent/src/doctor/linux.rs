//! Checks for the providers that build the node network on this Linux host
//! (local, QEMU): the node subnet must not already be in use by another
//! interface or route — a second home, a stale bridge of an earlier run, a
//! VPN — or the host would send node traffic elsewhere; and, for QEMU, what
//! it needs to boot at all.

use super::Check;
use crate::provider::qemu::vm::{self, Accel};
use ipnet::Ipv4Net;
use std::path::Path;

/// Interfaces and routes already covering `subnet`, other than `own`
/// (this home's bridge, which a rerun finds in place), from `ip -o -4 addr`
/// and `ip -4 route` output.
pub fn subnet_users(subnet: Ipv4Net, own: &str, addrs: &str, routes: &str) -> Vec<String> {
    let overlaps =
        |net: &Ipv4Net| net.contains(&subnet.network()) || subnet.contains(&net.network());
    let mut found = Vec::new();
    for line in addrs.lines() {
        // "7: br0    inet 10.251.5.1/24 brd … scope global br0"
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = words.iter().position(|w| *w == "inet") else {
            continue;
        };
        let (Some(dev), Some(Ok(net))) = (
            words.get(1).map(|d| d.trim_end_matches(':')),
            words.get(i + 1).map(|a| a.parse::<Ipv4Net>()),
        ) else {
            continue;
        };
        if dev != own && overlaps(&net.trunc()) {
            found.push(format!("{} on {dev}", net));
        }
    }
    for line in routes.lines() {
        // "10.251.5.0/24 dev br0 proto kernel scope link src 10.251.5.1"
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(Ok(net)) = words.first().map(|w| w.parse::<Ipv4Net>()) else {
            continue;
        };
        let dev = words
            .iter()
            .position(|w| *w == "dev")
            .and_then(|i| words.get(i + 1))
            .copied()
            .unwrap_or("?");
        let described = format!("route {net} via {dev}");
        if dev != own && overlaps(&net) && !found.iter().any(|f| f.ends_with(&format!("on {dev}")))
        {
            found.push(described);
        }
    }
    found
}

/// The node subnet against this host's interfaces and routes.
pub async fn subnet_in_use(subnet: Ipv4Net, own_bridge: &str) -> Check {
    let Ok(ip) = crate::provider::local::net::Ip::locate() else {
        return Check::warn(
            "subnet-free",
            "`ip` not found: cannot check the host's routes",
        );
    };
    let (addrs, routes) = match (
        ip.run(&["-o", "-4", "addr", "show"]).await,
        ip.run(&["-4", "route", "show"]).await,
    ) {
        (Ok(a), Ok(r)) => (a, r),
        (Err(e), _) | (_, Err(e)) => {
            return Check::warn(
                "subnet-free",
                format!("cannot list the host's addresses: {e}"),
            );
        }
    };
    let users = subnet_users(subnet, own_bridge, &addrs, &routes);
    if users.is_empty() {
        Check::ok("subnet-free", format!("{subnet} is not used on this host"))
    } else {
        Check::fail(
            "subnet-free",
            format!(
                "{subnet} is already in use here: {} — another home's network (run `hostctl down` there), a stale bridge (`ip link del <name>`), or choose another `network.cidr`",
                users.join(", ")
            ),
        )
    }
}

/// What the QEMU provider needs: its programs, a usable base image, and
/// whether KVM works (else TCG, minutes per boot).
pub async fn qemu(image: Option<&Path>) -> Vec<Check> {
    let mut kernel = None;
    let mut checks = Vec::new();
    let missing: Vec<&str> = ["qemu-system-x86_64", "qemu-img", "mkfs.vfat", "mcopy"]
        .into_iter()
        .filter(|p| vm::find_program(p).is_none())
        .collect();
    checks.push(if missing.is_empty() {
        Check::ok(
            "qemu",
            "qemu-system-x86_64, qemu-img, mkfs.vfat, mcopy found",
        )
    } else {
        Check::fail(
            "qemu",
            format!(
                "missing {}: install qemu-system-x86, qemu-utils, dosfstools, mtools",
                missing.join(", ")
            ),
        )
    });
    checks.push(match image {
        None => Check::fail(
            "image",
            format!(
                "no base image: set {} to an Ubuntu cloud image (qcow2) or a directory with rootfs.img, vmlinuz, initrd.img (`make test-image`)",
                crate::environment::QEMU_IMAGE.name
            ),
        ),
        Some(path) => match crate::provider::qemu::image::resolve(path).await {
            Ok(boot) => {
                kernel = boot.kernel.clone();
                Check::ok(
                "image",
                format!(
                    "{} ({}{})",
                    path.display(),
                    boot.base_format,
                    if boot.kernel.is_some() { ", direct kernel boot" } else { "" }
                ),
            )
            }
            Err(e) => Check::fail("image", e.to_string()),
        },
    });
    if let Some(qemu) = vm::find_program("qemu-system-x86_64") {
        checks.push(match vm::probe_accel(&qemu, kernel.as_deref()).await {
            (Accel::Kvm, _) => Check::ok("accel", "KVM"),
            (Accel::Tcg, why) => Check::warn(
                "accel",
                format!(
                    "TCG software emulation ({}): a boot takes minutes; give `up` a --timeout of several minutes",
                    why.unwrap_or_else(|| "KVM unusable".to_owned())
                ),
            ),
        });
    }
    checks
}

/// The node agent `up` would embed, against Multipass's user-data limit
/// (the QEMU provider sends the same user-data).
pub fn agent_binary(explicit: Option<&Path>) -> Check {
    let limit = cloud_init::MULTIPASS_USER_DATA_LIMIT as u64;
    match crate::orchestrator::steps::userdata::locate_node_agent(explicit) {
        None => Check::fail(
            "node-agent",
            "no node-agent binary beside hostctl: run `make dist`, or pass --node-agent-bin target/node-dist/node-agent",
        ),
        Some(path) => match std::fs::metadata(&path).map(|m| m.len()) {
            // The shipped build is ~4.3 MB raw, ~2.6 MB encoded.
            Ok(size) if size > 2 * limit => Check::fail(
                "node-agent",
                format!(
                    "{} is {size} bytes: too big for user-data (not the size-optimised build); use `make dist` or target/node-dist/node-agent",
                    path.display()
                ),
            ),
            Ok(size) => Check::ok("node-agent", format!("{} ({size} bytes)", path.display())),
            Err(e) => Check::fail("node-agent", format!("{}: {e}", path.display())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_interface_or_route_on_the_subnet_is_found_and_our_bridge_is_not() {
        let subnet: Ipv4Net = "10.251.5.0/24".parse().unwrap();
        let addrs = "1: lo    inet 127.0.0.1/8 scope host lo\n\
                     7: hc1a2b3c    inet 10.251.5.1/24 brd 10.251.5.255 scope global hc1a2b3c\n\
                     9: hcffffff    inet 10.251.5.1/24 scope global hcffffff\n";
        let routes = "default via 10.0.2.2 dev eth0\n\
                      10.251.5.0/24 dev hc1a2b3c proto kernel scope link src 10.251.5.1\n\
                      10.251.0.0/16 dev tun0 scope link\n";
        let users = subnet_users(subnet, "hc1a2b3c", addrs, routes);
        assert_eq!(
            users,
            ["10.251.5.1/24 on hcffffff", "route 10.251.0.0/16 via tun0"]
        );
        assert!(subnet_users(subnet, "hc1a2b3c", "", "10.251.5.0/24 dev hc1a2b3c\n").is_empty());
    }
}
