//! The Multipass provider: each node is a Multipass instance, driven through
//! the `multipass` client's command line and its `--format json` output.
//!
//! Failures are classified ([`errors`]) so that callers can act: the client
//! missing ([`ProviderError::NotInstalled`]), the daemon down
//! ([`ProviderError::Precondition`] with advice), a name already in use,
//! not enough host resources, and a launch that timed out. The last is
//! common while the machine is in fact fine (Multipass declares failure
//! without checking the state — canonical/multipass#1757 and many like it),
//! so a timed-out launch whose instance is `Running` or `Starting` is
//! returned as launched, with a warning: the node agent's enrolment, not
//! Multipass, decides whether the node came up.
//!
//! # Addresses
//!
//! The default NIC's address is leased by the host (macOS bootpd on
//! vmnet-shared), cannot be pinned, and is known to drift over days
//! (k8s-bootstrap.md §4.4–4.5, canonical/multipass#3792). It is still the one
//! always there, so [`MultipassProvider::subnet`] reads the subnet it really
//! uses back from the machines (192.168.252.0/24 on Multipass ≥ 1.16.2,
//! 192.168.64.0/24 before) instead of assuming one; when no machine exists
//! yet it derives it from the daemon's release on a Mac.
//!
//! Node addresses that must not move (API server, etcd, kubelet `node-ip`,
//! the agent's listener) are a second, static address on that same NIC,
//! next to its lease, rendered into user-data as netplan
//! (docs/multipass-networking.md says why this mechanism).
//!
//! Optionally, [`StableNetwork`] adds instead the extra NIC of Multipass's static-IP recipe:
//! `--network name=<bridge>,mode=manual,mac=<mac>` with a MAC derived from
//! the node name ([`MultipassProvider::stable_mac`]), which the caller's
//! user-data netplan matches to give it the node's fixed address. The price:
//! on macOS the only bridge targets are physical interfaces, so those
//! addresses live on the real LAN and must be free there, and Wi-Fi bridging
//! may be unreliable. It is therefore off by default.

mod args;
mod cli;
pub mod errors;
pub mod json;
pub mod network;
mod scratch;

pub use cli::MultipassCli;
pub use network::{MacAddr, address_on, default_subnet, subnet_for_release};

use super::{LaunchSpec, Provider, ProviderError, VmInfo, VmState};
use crate::exec::{CommandOutput, Runner};
use args::LaunchOptions;
use async_trait::async_trait;
use errors::Operation;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Extra time our own deadline allows beyond Multipass's, so that its
/// clearer timeout message normally arrives before we kill the client.
const DEADLINE_GRACE: Duration = Duration::from_secs(60);

/// How the provider runs Multipass. `Default` is what `hostctl` uses on a
/// Mac; tests change `program` and the timeouts.
#[derive(Debug, Clone)]
pub struct MultipassConfig {
    /// The `multipass` client (from `PATH` by default).
    pub program: PathBuf,
    /// The image every node boots (`multipass launch <image>`).
    pub image: String,
    /// Multipass's `--timeout` for launch and start. It bounds startup and
    /// cloud-init *each*, so our own deadline for the call is twice this
    /// plus a grace period.
    pub launch_timeout: Duration,
    /// Deadline for stop and delete.
    pub command_timeout: Duration,
    /// Deadline for list, info and version (they should answer at once; a
    /// hang means a wedged daemon).
    pub query_timeout: Duration,
    /// At most this many machines boot at once (launch and start): booting
    /// is CPU- and disk-bound on a laptop, and Multipass's own timeouts fire
    /// when too many compete.
    pub max_parallel_boots: usize,
    /// The optional stable-address NIC (see the module documentation).
    pub stable_network: Option<StableNetwork>,
    /// Where user-data is written (0600, removed after the launch). Multipass
    /// reads it client-side, so any directory of ours works; a snap-confined
    /// client on Linux cannot read `/tmp`, so give a directory under the
    /// home there.
    pub scratch_dir: PathBuf,
    /// When set, `list` and `subnet` consider only these instances, so that
    /// a user's unrelated Multipass machines are never reported (and never
    /// torn down by `down`).
    pub managed: Option<BTreeSet<String>>,
}

impl Default for MultipassConfig {
    fn default() -> Self {
        MultipassConfig {
            program: PathBuf::from("multipass"),
            image: "24.04".to_owned(),
            launch_timeout: Duration::from_secs(600),
            command_timeout: Duration::from_secs(300),
            query_timeout: Duration::from_secs(60),
            max_parallel_boots: 3,
            stable_network: None,
            scratch_dir: std::env::temp_dir(),
            managed: None,
        }
    }
}

/// The extra NIC that carries a node's fixed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StableNetwork {
    /// The `--network name=` target (`multipass networks` lists them; on
    /// macOS a physical interface such as `en0`).
    pub bridge: String,
}

/// What `multipass version` reports: `multipass   1.16.3+mac` and, when the
/// daemon answered, `multipassd  1.16.3+mac` (the release decides the
/// default subnet, k8s-bootstrap.md §0.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipassVersion {
    pub client: Option<String>,
    pub daemon: Option<String>,
}

impl MultipassVersion {
    fn parse(text: &str) -> MultipassVersion {
        let field = |program: &str| {
            text.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some(program))
                    .then(|| words.next().map(str::to_owned))
                    .flatten()
            })
        };
        MultipassVersion {
            client: field("multipass"),
            daemon: field("multipassd"),
        }
    }
}

/// Machines as Multipass instances. Cheap to share behind an `Arc`; the
/// boot bound is per provider value.
#[derive(Debug)]
pub struct MultipassProvider {
    config: MultipassConfig,
    cli: MultipassCli,
    boots: Semaphore,
}

impl MultipassProvider {
    pub fn new(config: MultipassConfig) -> Self {
        Self::with_runner(config, crate::exec::real())
    }

    /// A provider whose `multipass` calls go to `runner` (tests record them).
    pub fn with_runner(config: MultipassConfig, runner: Arc<dyn Runner>) -> Self {
        MultipassProvider {
            cli: MultipassCli::with_runner(config.program.clone(), runner),
            boots: Semaphore::new(config.max_parallel_boots.max(1)),
            config,
        }
    }

    pub fn config(&self) -> &MultipassConfig {
        &self.config
    }

    /// The MAC the stable-address NIC of `name` gets, whether or not the
    /// NIC is enabled, so that user-data can be rendered (and reviewed)
    /// before any machine exists.
    pub fn stable_mac(name: &str) -> MacAddr {
        MacAddr::for_node(name)
    }

    /// The MAC of `name`'s stable-address NIC when that NIC is configured;
    /// `None` means the netplan must not expect one.
    pub fn extra_nic_mac(&self, name: &str) -> Option<MacAddr> {
        self.config
            .stable_network
            .as_ref()
            .map(|_| Self::stable_mac(name))
    }

    /// `multipass version`: a cheap preflight. The client answers even when
    /// the daemon does not, leaving out the daemon's line, so a missing
    /// [`MultipassVersion::daemon`] means "installed but multipassd is down".
    pub async fn version(&self) -> Result<MultipassVersion, ProviderError> {
        let out = self
            .call(
                Operation::Version,
                "",
                &["version".into()],
                self.config.query_timeout,
            )
            .await?;
        Ok(MultipassVersion::parse(&out.stdout_text()))
    }

    /// `multipass get KEY` (e.g. `local.driver`: qemu, libvirt, virtualbox,
    /// hyperkit), trimmed; for `hostctl doctor`.
    pub async fn setting(&self, key: &str) -> Result<String, ProviderError> {
        let out = self
            .call(
                Operation::Get,
                "",
                &["get".into(), key.into()],
                self.config.query_timeout,
            )
            .await?;
        Ok(out.stdout_text().trim().to_owned())
    }

    async fn call(
        &self,
        op: Operation,
        name: &str,
        args: &[OsString],
        deadline: Duration,
    ) -> Result<CommandOutput, ProviderError> {
        let cmd = self.cli.command(args, deadline);
        let out = self
            .cli
            .run(&cmd)
            .await
            .map_err(|e| errors::from_exec_error(op, name, e))?;
        if out.success() {
            Ok(out)
        } else {
            Err(errors::classify(op, name, &cmd, &out))
        }
    }

    fn boot_deadline(&self) -> Duration {
        self.config.launch_timeout.saturating_mul(2) + DEADLINE_GRACE
    }

    async fn boot_permit(
        &self,
        op: Operation,
        name: &str,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, ProviderError> {
        self.boots
            .acquire()
            .await
            .map_err(|_| ProviderError::failed(op.as_str(), name, "the provider is shutting down"))
    }

    fn is_managed(&self, name: &str) -> bool {
        self.config
            .managed
            .as_ref()
            .is_none_or(|names| names.contains(name))
    }

    /// After a launch timed out: the machine counts as launched if Multipass
    /// shows it running or starting; otherwise the timeout stands.
    async fn after_launch_timeout(
        &self,
        name: &str,
        timeout: ProviderError,
    ) -> Result<VmInfo, ProviderError> {
        match self.info(name).await {
            Ok(Some(vm)) if matches!(vm.state, VmState::Running | VmState::Starting) => {
                tracing::warn!(
                    machine = name,
                    state = %vm.state,
                    error = %timeout,
                    "multipass launch timed out but the machine is up; carrying on, enrolment decides"
                );
                Ok(vm)
            }
            Ok(_) => Err(timeout),
            Err(e) => {
                tracing::warn!(machine = name, error = %e, "cannot look at a machine whose launch timed out");
                Err(timeout)
            }
        }
    }
}

#[async_trait]
impl Provider for MultipassProvider {
    fn name(&self) -> &'static str {
        "multipass"
    }

    async fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
        let args: Vec<OsString> = vec!["list".into(), "--format".into(), "json".into()];
        let out = self
            .call(Operation::List, "", &args, self.config.query_timeout)
            .await?;
        let reply =
            json::parse_list(&out.stdout_text()).map_err(|e| unreadable(Operation::List, "", e))?;
        Ok(reply
            .list
            .iter()
            .filter(|entry| self.is_managed(&entry.name))
            .map(json::ListEntry::to_vm_info)
            .collect())
    }

    async fn info(&self, name: &str) -> Result<Option<VmInfo>, ProviderError> {
        args::check_name("info", name)?;
        let args = args::on_instance("info", &["--format", "json"], name);
        let out = match self
            .call(Operation::Info, name, &args, self.config.query_timeout)
            .await
        {
            Ok(out) => out,
            Err(ProviderError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let reply = json::parse_info(&out.stdout_text())
            .map_err(|e| unreadable(Operation::Info, name, e))?;
        Ok(reply.info.get(name).map(|entry| entry.to_vm_info(name)))
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<VmInfo, ProviderError> {
        let name = spec.name.as_str();
        args::check_name("launch", name)?;
        let user_data = spec.user_data.as_deref().ok_or_else(|| {
            ProviderError::Precondition(format!(
                "{name}: a Multipass machine needs cloud-init user-data to get its node agent"
            ))
        })?;
        let _permit = self.boot_permit(Operation::Launch, name).await?;
        let file = scratch::UserDataFile::write(&self.config.scratch_dir, name, user_data)?;
        let bridge = self
            .config
            .stable_network
            .as_ref()
            .map(|n| n.bridge.as_str());
        let args = args::launch(
            spec,
            LaunchOptions {
                image: &self.config.image,
                timeout: self.config.launch_timeout,
                user_data: Some(file.path()),
                network: bridge.map(|b| (b, Self::stable_mac(name))),
            },
        );
        let launched = self
            .call(Operation::Launch, name, &args, self.boot_deadline())
            .await;
        drop(file);
        match launched {
            Ok(_) => {}
            Err(timeout @ ProviderError::Timeout { .. }) => {
                return self.after_launch_timeout(name, timeout).await;
            }
            Err(e) => return Err(e),
        }
        self.info(name).await?.ok_or_else(|| {
            ProviderError::failed(
                "launch",
                name,
                "multipass reported success but does not list the instance",
            )
        })
    }

    /// Beside the default NIC's lease, unless the extra stable NIC is
    /// configured (then on that NIC, matched by its MAC).
    fn user_data_address(
        &self,
        name: &str,
        address: ipnet::Ipv4Net,
    ) -> Option<cloud_init::NodeAddress> {
        Some(match self.extra_nic_mac(name) {
            Some(mac) => cloud_init::NodeAddress::Stable(cloud_init::StableAddress {
                interface: cloud_init::network::InterfaceMatch::MacAddress(
                    cloud_init::network::MacAddress::new(mac.0),
                ),
                address,
                gateway: None,
                nameservers: Vec::new(),
            }),
            None => default_nic_address(address),
        })
    }

    async fn start(&self, name: &str) -> Result<(), ProviderError> {
        args::check_name("start", name)?;
        let _permit = self.boot_permit(Operation::Start, name).await?;
        let args = args::on_instance("start", &[], name);
        self.call(Operation::Start, name, &args, self.boot_deadline())
            .await
            .map(drop)
    }

    async fn stop(&self, name: &str) -> Result<(), ProviderError> {
        args::check_name("stop", name)?;
        let args = args::on_instance("stop", &[], name);
        self.call(Operation::Stop, name, &args, self.config.command_timeout)
            .await
            .map(drop)
    }

    async fn delete(&self, name: &str, purge: bool) -> Result<(), ProviderError> {
        args::check_name("delete", name)?;
        let flags: &[&str] = if purge { &["--purge"] } else { &[] };
        let args = args::on_instance("delete", flags, name);
        self.call(Operation::Delete, name, &args, self.config.command_timeout)
            .await
            .map(drop)
    }

    /// The default NIC's subnet as the machines report it; before the first
    /// machine has an address, the one the daemon's release will give it
    /// ([`network::subnet_for_release`]); `None` when neither tells.
    async fn subnet(&self) -> Result<Option<ipnet::Ipv4Net>, ProviderError> {
        if let Some(subnet) = default_subnet(&self.list().await?) {
            return Ok(Some(subnet));
        }
        let version = self.version().await?;
        Ok(version
            .daemon
            .or(version.client)
            .as_deref()
            .and_then(network::subnet_for_release))
    }
}

/// What a Multipass node's user-data pins by default: `address` beside the
/// default NIC's DHCP lease (docs/multipass-networking.md). Also what
/// `hostctl render` shows, before any provider is chosen.
pub fn default_nic_address(address: ipnet::Ipv4Net) -> cloud_init::NodeAddress {
    cloud_init::NodeAddress::BesideLease(cloud_init::LeaseNeighbour { address })
}

fn unreadable(op: Operation, name: &str, err: json::ParseError) -> ProviderError {
    ProviderError::failed_by(op.as_str(), name, err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{Cmd, ExecError, RecordingRunner};

    fn provider(runner: Arc<RecordingRunner>) -> MultipassProvider {
        MultipassProvider::with_runner(MultipassConfig::default(), runner)
    }

    #[tokio::test]
    async fn queries_run_the_client_with_the_query_deadline() {
        let runner = Arc::new(RecordingRunner::answering(|_| {
            Ok(CommandOutput::exited(0)
                .with_stdout("multipass   1.16.3+mac\nmultipassd  1.16.3+mac\n"))
        }));
        let version = provider(runner.clone()).version().await.unwrap();
        assert_eq!(version.daemon.as_deref(), Some("1.16.3+mac"));
        let calls = runner.calls();
        assert_eq!(runner.argvs(), [["version"]]);
        assert_eq!(calls[0].program(), std::path::Path::new("multipass"));
        assert_eq!(
            calls[0].get_deadline(),
            Some(MultipassConfig::default().query_timeout)
        );
    }

    #[tokio::test]
    async fn a_client_past_its_deadline_fails_and_keeps_the_timeout() {
        let runner = Arc::new(RecordingRunner::answering(|cmd: &Cmd| {
            Err(ExecError::Timeout {
                program: cmd.program().to_path_buf(),
                command: cmd.to_string(),
                after: Duration::from_secs(60),
            })
        }));
        let err = provider(runner).list().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "list  failed: timed out: multipass gave no answer within 60s"
        );
        let source = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<ExecError>());
        assert!(
            matches!(source, Some(ExecError::Timeout { .. })),
            "{source:?}"
        );
    }
}
