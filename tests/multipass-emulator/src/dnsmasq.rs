//! The DHCP server of the emulated network: a real dnsmasq, because what
//! hostctl must survive is a real server's behaviour (leases from .2
//! upward, addresses still held by stopped machines, a ping before an
//! address is offered), not a model of it.
//!
//! DHCP only (`--port=0` turns DNS off), bound to the bridge alone, its
//! lease, pid and log files in the state directory, and `/etc/dnsmasq.conf`
//! ignored so the host's configuration cannot leak in.

use crate::network::{self, Network};
use crate::process;
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Lease time: bootpd's default (86400 s, seen in reported `bootpd.plist`s).
/// Long enough that nothing renews during a test, so a stopped machine's
/// lease stays held, as on a Mac.
const LEASE_TIME: &str = "24h";

pub fn pid_file(state: &Path) -> PathBuf {
    state.join("dnsmasq.pid")
}

fn log_file(state: &Path) -> PathBuf {
    state.join("dnsmasq.log")
}

/// dnsmasq's arguments for `net` with files in `state`.
pub fn args(net: &Network, state: &Path) -> Vec<String> {
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    vec![
        "--conf-file=/dev/null".into(),
        "--port=0".into(),
        format!("--interface={}", net.bridge),
        "--bind-interfaces".into(),
        "--except-interface=lo".into(),
        format!(
            "--dhcp-range={},{},{},{LEASE_TIME}",
            network::RANGE_START,
            network::RANGE_END,
            network::NETMASK
        ),
        "--dhcp-sequential-ip".into(),
        "--dhcp-authoritative".into(),
        format!("--dhcp-option=option:router,{}", network::HOST),
        format!(
            "--dhcp-leasefile={}",
            path(crate::leases::dnsmasq_file(state))
        ),
        format!("--pid-file={}", path(pid_file(state))),
        "--log-dhcp".into(),
        format!("--log-facility={}", path(log_file(state))),
    ]
}

/// dnsmasq's pid when the one this state directory started is running.
pub fn running(state: &Path) -> Option<i32> {
    let pid = process::read_pid(&pid_file(state))?;
    let marker = format!("--pid-file={}", pid_file(state).display());
    process::alive_with(pid, &[&marker]).then_some(pid)
}

/// Starts dnsmasq unless it runs. It daemonizes itself (its own session,
/// stdio closed), so it outlives the CLI call that started it.
pub fn ensure_running(net: &Network, state: &Path) -> anyhow::Result<()> {
    if running(state).is_some() {
        return Ok(());
    }
    let program = crate::ip::find_program("dnsmasq")
        .context("dnsmasq is not installed (Debian/Ubuntu: dnsmasq-base)")?;
    let out = Command::new(&program)
        .args(args(net, state))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "dnsmasq failed to start ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if !process::wait_until(Duration::from_secs(5), || running(state).is_some()) {
        bail!(
            "dnsmasq started but {} names no running dnsmasq",
            pid_file(state).display()
        );
    }
    Ok(())
}

/// Stops this state directory's dnsmasq (its leases stay in the file).
pub fn stop(state: &Path) {
    if let Some(pid) = running(state) {
        let marker = format!("--pid-file={}", pid_file(state).display());
        process::terminate(pid, &[&marker], Duration::from_secs(5));
    }
    let _ = std::fs::remove_file(pid_file(state));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhcp_only_on_the_bridge_from_two_upward_with_files_in_the_state_dir() {
        let net = Network {
            bridge: "mpemu0".into(),
        };
        let a = args(&net, Path::new("/s"));
        for needle in [
            "--port=0",
            "--interface=mpemu0",
            "--bind-interfaces",
            "--except-interface=lo",
            "--dhcp-range=192.168.252.2,192.168.252.254,255.255.255.0,24h",
            "--dhcp-sequential-ip",
            "--dhcp-option=option:router,192.168.252.1",
            "--dhcp-leasefile=/s/dnsmasq.leases",
            "--pid-file=/s/dnsmasq.pid",
            "--conf-file=/dev/null",
        ] {
            assert!(a.iter().any(|x| x == needle), "{needle} missing in {a:?}");
        }
    }
}
