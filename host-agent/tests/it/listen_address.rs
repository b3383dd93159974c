//! The daemon listens on the node network's host address, and when that
//! address does not exist yet (a Mac's vmnet bridge appears with the first
//! VM) it starts anyway and binds as soon as the address appears (issue 13,
//! item 3).
//!
//! The test runs on a thread of its own moved into a network namespace the
//! test creates and removes (root only; CI runs as root), so the address it
//! adds — on the namespace's loopback interface, no kernel module needed —
//! is seen by nothing else on the machine.

use test_support::host_daemon as support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{BoxError, Home};

/// Not loopback by number, so the daemon treats it as a node network's.
const HOST_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// A fresh namespace has every port free.
const PORT: u16 = 7443;
const DEADLINE: Duration = Duration::from_secs(60);

fn ip(args: &[&str]) -> Result<(), BoxError> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// A named network namespace, removed when dropped.
struct Netns(String);

impl Netns {
    fn create() -> Result<Netns, BoxError> {
        let name = format!("hostctl-listen-{}", std::process::id());
        ip(&["netns", "add", &name]).map_err(|e| format!("{e} (needs root)"))?;
        Ok(Netns(name))
    }

    /// Moves the calling thread (only) into the namespace.
    fn enter(&self) -> Result<(), BoxError> {
        use std::os::fd::AsFd;
        let file = std::fs::File::open(std::path::Path::new("/run/netns").join(&self.0))?;
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        ip(&["link", "set", "lo", "up"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(netns: &Netns) -> Result<(), BoxError> {
    netns.enter()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let home = Home::new()?;
        let mut config = home.config();
        config.listen = IpAddr::V4(HOST_ADDRESS);
        config.port = PORT;
        config.enrol_port = PORT + 1;
        let daemon = host_agent::daemon::Daemon::start(config, home.pki.clone()).await?;
        // Started although the address does not exist: the CLI's socket
        // answers, and status says where nodes will dial.
        let status = home.control().await?.status().await?;
        assert_eq!(status.host_endpoint, format!("{HOST_ADDRESS}:{PORT}"));
        let target = SocketAddr::from((HOST_ADDRESS, PORT));
        assert!(
            TcpStream::connect_timeout(&target, Duration::from_secs(1)).is_err(),
            "nothing can listen on an address that does not exist"
        );

        ip(&["addr", "add", &format!("{HOST_ADDRESS}/32"), "dev", "lo"])?;
        let deadline = Instant::now() + DEADLINE;
        let enrol = SocketAddr::from((HOST_ADDRESS, PORT + 1));
        loop {
            let host_up = TcpStream::connect_timeout(&target, Duration::from_secs(1)).is_ok();
            let enrol_up = TcpStream::connect_timeout(&enrol, Duration::from_secs(1)).is_ok();
            if host_up && enrol_up {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the daemon did not listen on {HOST_ADDRESS} within {DEADLINE:?} \
                     (host {host_up}, enrolment {enrol_up})"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        daemon.stop().await?;
        Ok(())
    })
}

#[test]
fn the_daemon_binds_the_node_network_address_once_it_appears() -> Result<(), BoxError> {
    // A thread of its own: setns changes only the calling thread's
    // namespace, and the test harness's threads must keep theirs.
    let netns = Netns::create()?;
    std::thread::scope(|s| {
        s.spawn(|| run(&netns).map_err(|e| e.to_string()))
            .join()
            .map_err(|_| "the test thread panicked".to_owned())?
    })?;
    Ok(())
}
