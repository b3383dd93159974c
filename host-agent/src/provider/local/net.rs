//! The local provider's network plumbing: one bridge in the root namespace
//! holding the host's address, and per node a network namespace joined to it
//! by a veth pair. Everything goes through the `ip` CLI (iproute2) via one
//! runner, so every failure carries the exact command and its stderr.

use crate::provider::multipass::network::MacAddr;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A failed `ip` invocation, with what it said on stderr.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("`ip` (iproute2) not found on PATH, /usr/sbin or /sbin")]
    IpMissing,
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
}

/// Where iproute2 keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Runs `ip` and turns a non-zero exit into a [`NetError`] with stderr.
#[derive(Debug, Clone)]
pub struct Ip {
    program: PathBuf,
}

impl Ip {
    /// Finds `ip` on `$PATH` or in the sbin directories `sudo` may drop
    /// from `$PATH`.
    pub fn locate() -> Result<Ip, NetError> {
        let path_dirs = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        path_dirs
            .into_iter()
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
            .map(|dir| dir.join("ip"))
            .find(|candidate| is_executable(candidate))
            .map(|program| Ip { program })
            .ok_or(NetError::IpMissing)
    }

    /// The resolved `ip` binary (the supervisor execs it for `netns exec`).
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Runs `ip <args>` and returns its stdout.
    pub async fn run(&self, args: &[&str]) -> Result<String, NetError> {
        let command = format!("ip {}", args.join(" "));
        let output = tokio::process::Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|source| NetError::Spawn {
                command: command.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(NetError::Command {
                command,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True when an interface of that name exists in the root namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// One node's wiring, as recorded in the provider state.
#[derive(Debug, Clone)]
pub struct NodeLink<'a> {
    pub netns: &'a str,
    pub host_veth: &'a str,
    pub bridge: &'a str,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
}

impl Ip {
    /// Creates the bridge if needed and gives it the host's address; safe to
    /// repeat (the address is replaced, not added twice).
    pub async fn ensure_bridge(
        &self,
        bridge: &str,
        host: Ipv4Addr,
        network: Ipv4Net,
    ) -> Result<(), NetError> {
        if !link_exists(bridge) {
            self.run(&["link", "add", bridge, "type", "bridge"]).await?;
        }
        // A bridge without an address of its own takes the lowest MAC of
        // its ports, so it changed as node links were added, and a node
        // that had resolved the host address kept sending to the old MAC
        // until its ARP entry aged out: enrolment stalled 30–90 s with TCP
        // retransmitting (seen in the provisioning suite). A MAC set once
        // stays.
        let mac = MacAddr::for_bridge(bridge).to_string();
        self.run(&["link", "set", bridge, "address", &mac]).await?;
        let cidr = format!("{host}/{}", network.prefix_len());
        self.run(&["addr", "replace", &cidr, "dev", bridge]).await?;
        self.run(&["link", "set", bridge, "up"]).await?;
        Ok(())
    }

    /// Removes the bridge; a bridge that is already gone is not an error.
    pub async fn remove_bridge(&self, bridge: &str) -> Result<(), NetError> {
        if link_exists(bridge) {
            self.run(&["link", "del", bridge]).await?;
        }
        Ok(())
    }

    /// Network namespaces that exist now, by name.
    pub async fn netns_list(&self) -> Result<Vec<String>, NetError> {
        let out = self.run(&["netns", "list"]).await?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect())
    }

    /// Whether `netns` exists: `ip netns add` makes `/run/netns/<name>`
    /// (what `ip netns list` reads), so no process is spawned — `status`
    /// asked once per node, and those spawns were most of its time.
    pub async fn netns_exists(&self, netns: &str) -> Result<bool, NetError> {
        Ok(std::path::Path::new(NETNS_DIR).join(netns).exists())
    }

    /// Creates the namespace and its veth pair, addresses `eth0`, brings
    /// `lo` and `eth0` up and routes everything via the host. Leftovers of
    /// an earlier, interrupted attempt are removed first.
    pub async fn create_node(&self, link: &NodeLink<'_>) -> Result<(), NetError> {
        self.remove_node(link.netns, link.host_veth).await?;
        let ns = link.netns;
        self.run(&["netns", "add", ns]).await?;
        self.run(&[
            "link",
            "add",
            link.host_veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        ])
        .await?;
        self.run(&["link", "set", link.host_veth, "master", link.bridge])
            .await?;
        self.run(&["link", "set", link.host_veth, "up"]).await?;
        let cidr = format!("{}/{}", link.address, link.prefix_len);
        self.run(&["-n", ns, "addr", "add", &cidr, "dev", "eth0"])
            .await?;
        self.run(&["-n", ns, "link", "set", "lo", "up"]).await?;
        self.run(&["-n", ns, "link", "set", "eth0", "up"]).await?;
        let gateway = link.gateway.to_string();
        self.run(&["-n", ns, "route", "replace", "default", "via", &gateway])
            .await?;
        Ok(())
    }

    /// Removes the veth pair and the namespace; absent ones are skipped.
    pub async fn remove_node(&self, netns: &str, host_veth: &str) -> Result<(), NetError> {
        if link_exists(host_veth) {
            self.run(&["link", "del", host_veth]).await?;
        }
        if self.netns_exists(netns).await? {
            self.run(&["netns", "del", netns]).await?;
        }
        Ok(())
    }

    /// Process ids still running inside a namespace.
    pub async fn netns_pids(&self, netns: &str) -> Result<Vec<i32>, NetError> {
        let out = self.run(&["netns", "pids", netns]).await?;
        Ok(out
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }
}
