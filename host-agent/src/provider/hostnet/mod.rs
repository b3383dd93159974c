//! Host networking that both Linux providers build their node networks
//! from: the `ip` (iproute2) runner, the bridge that holds the host's
//! address, and the MACs derived from names. The local provider adds
//! network namespaces and veth pairs on top ([`super::local`]), the QEMU
//! provider tap devices ([`super::qemu`]); neither reaches into the other.
//! Every `ip` call goes through [`crate::exec`], so a failure carries the
//! exact command and the end of its stderr.

mod mac;

pub use mac::MacAddr;

use crate::exec::{self, Cmd, ExecError, Runner};
use crate::provider::ProviderError;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `ip` is missing, or one of its invocations failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("`ip` (iproute2) not found on PATH, /usr/sbin or /sbin")]
    IpMissing,
    #[error("{0}")]
    Exec(#[from] ExecError),
}

impl NetError {
    /// The provider error for a network step of `name` (a node, or the
    /// provider itself for its bridge): a missing `ip` is something to
    /// install, anything else a failed setup that keeps this error.
    pub fn into_provider_error(self, name: &str) -> ProviderError {
        match self {
            NetError::IpMissing => ProviderError::NotInstalled {
                tool: "ip".into(),
                hint: "install iproute2".into(),
                source: None,
            },
            other => ProviderError::failed_by("network setup", name, other),
        }
    }
}

/// Runs `ip`; a non-zero exit is a [`NetError`] with its stderr.
#[derive(Debug, Clone)]
pub struct Ip {
    program: PathBuf,
    runner: Arc<dyn Runner>,
}

impl Ip {
    /// Finds `ip` on `$PATH` or in the sbin directories `sudo` may drop
    /// from `$PATH`.
    pub fn locate() -> Result<Ip, NetError> {
        exec::find_program("ip")
            .map(|program| Ip::with_runner(program, exec::real()))
            .ok_or(NetError::IpMissing)
    }

    /// `program` run by `runner` (tests record the commands instead).
    pub fn with_runner(program: impl Into<PathBuf>, runner: Arc<dyn Runner>) -> Ip {
        Ip {
            program: program.into(),
            runner,
        }
    }

    /// The resolved `ip` binary (the supervisor execs it for `netns exec`).
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Runs `ip <args>` and returns its stdout.
    pub async fn run(&self, args: &[&str]) -> Result<String, NetError> {
        let cmd = Cmd::new(&self.program).args(args);
        Ok(self.runner.run(&cmd).await?.stdout_text())
    }

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
}

/// True when an interface of that name exists in the root namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{CommandOutput, RecordingRunner};

    #[tokio::test]
    async fn a_new_bridge_gets_its_fixed_mac_and_the_host_address() {
        let runner = Arc::new(RecordingRunner::succeeding());
        let ip = Ip::with_runner("/sbin/ip", runner.clone());
        let bridge = "hcnotalink0";
        ip.ensure_bridge(
            bridge,
            "10.9.0.1".parse().unwrap(),
            "10.9.0.0/24".parse().unwrap(),
        )
        .await
        .unwrap();
        let mac = MacAddr::for_bridge(bridge).to_string();
        assert_eq!(
            runner.argvs(),
            [
                vec!["link", "add", bridge, "type", "bridge"],
                vec!["link", "set", bridge, "address", &mac],
                vec!["addr", "replace", "10.9.0.1/24", "dev", bridge],
                vec!["link", "set", bridge, "up"],
            ]
        );
        assert!(
            runner
                .calls()
                .iter()
                .all(|c| c.program() == Path::new("/sbin/ip"))
        );
    }

    #[tokio::test]
    async fn a_failed_step_keeps_the_command_and_its_stderr_as_the_source() {
        let runner =
            Arc::new(RecordingRunner::answering(|_| {
                Ok(CommandOutput::exited(2)
                    .with_stderr("RTNETLINK answers: Operation not permitted\n"))
            }));
        let ip = Ip::with_runner("ip", runner);
        let err = ip
            .run(&["link", "add", "x", "type", "bridge"])
            .await
            .unwrap_err();
        let provider = err.into_provider_error("local");
        let text = provider.to_string();
        assert_eq!(
            text,
            "network setup local failed: `ip link add x type bridge` failed (exit status: 2): \
             RTNETLINK answers: Operation not permitted"
        );
        assert_eq!(telemetry::error_chain::chain(&provider), text);
        let source =
            std::error::Error::source(&provider).and_then(|s| s.downcast_ref::<NetError>());
        assert!(
            matches!(source, Some(NetError::Exec(ExecError::Exit { .. }))),
            "{source:?}"
        );
    }
}
