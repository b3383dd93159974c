//! iproute2, the only way the emulator changes the kernel's network state:
//! every change is an `ip` command line, so a failure quotes the exact
//! command and its stderr, and no unsafe `setns` is needed (commands inside
//! a namespace are `ip -n NS …` or `ip netns exec NS …`).

use anyhow::{Context as _, bail};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `ip` program: `$PATH` first, then the sbin directories `sudo` may
/// have dropped from it.
pub fn program() -> PathBuf {
    find_program("ip").unwrap_or_else(|| PathBuf::from("/usr/sbin/ip"))
}

/// Finds an executable on `$PATH` or in the usual system directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `ip <args>`; its stdout, or an error quoting the command.
pub fn run(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `ip {}`", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip <args>` for cleanup, where "already gone" is success.
pub fn run_quiet(args: &[&str]) {
    let _ = Command::new(program())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// An interface of that name exists in the root namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A named network namespace exists (`ip netns add` makes this file).
pub fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// One IPv4 address as `ip -j addr` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ifname: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub global: bool,
}

/// Every IPv4 address in namespace `ns` (all interfaces), in the kernel's
/// order.
pub fn addresses(ns: &str) -> anyhow::Result<Vec<Address>> {
    let text = run(&["-n", ns, "-j", "-4", "addr", "show"])?;
    Ok(parse_addresses(&text))
}

/// Parses `ip -j -4 addr show`.
pub fn parse_addresses(json: &str) -> Vec<Address> {
    let links: Vec<Value> = serde_json::from_str(json).unwrap_or_default();
    let mut out = Vec::new();
    for link in &links {
        let ifname = link.get("ifname").and_then(Value::as_str).unwrap_or("");
        let infos = link.get("addr_info").and_then(Value::as_array);
        for info in infos.into_iter().flatten() {
            if info.get("family").and_then(Value::as_str) != Some("inet") {
                continue;
            }
            let Some(address) = info
                .get("local")
                .and_then(Value::as_str)
                .and_then(|a| a.parse().ok())
            else {
                continue;
            };
            out.push(Address {
                ifname: ifname.to_owned(),
                address,
                prefix: info.get("prefixlen").and_then(Value::as_u64).unwrap_or(32) as u8,
                global: info.get("scope").and_then(Value::as_str) == Some("global"),
            });
        }
    }
    out
}

/// Interfaces enslaved to `bridge` (veths and taps of machines).
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
    else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Pids of processes in namespace `ns`.
pub fn netns_pids(ns: &str) -> Vec<i32> {
    run(&["netns", "pids", ns])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Interfaces in the root namespace holding an address on `prefix`
/// (`ip -4 addr show to 192.168.252.0/24`).
pub fn links_with_addresses_on(cidr: &str) -> Vec<String> {
    run(&["-j", "-4", "addr", "show", "to", cidr])
        .map(|t| parse_addresses(&t).into_iter().map(|a| a.ifname).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_from_ip_json_in_kernel_order() {
        let json = r#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
            {"ifindex":2,"ifname":"enp0s1","addr_info":[{"family":"inet","local":"192.168.252.3","prefixlen":24,"scope":"global"},
            {"family":"inet","local":"192.168.252.10","prefixlen":24,"scope":"global"}]}]"#;
        let a = parse_addresses(json);
        assert_eq!(a.len(), 3);
        assert!(!a[0].global);
        assert_eq!(a[1].address, Ipv4Addr::new(192, 168, 252, 3));
        assert_eq!((a[2].ifname.as_str(), a[2].prefix), ("enp0s1", 24));
        assert!(parse_addresses("not json").is_empty());
    }
}
