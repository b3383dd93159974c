//! What a daemon needs to know to serve: where to listen, which address to
//! tell nodes, and which nodes exist (name → cluster and addresses). Kept
//! independent of the topology file format so that tests and benchmarks
//! can build one directly; [`crate::daemon::topology`] fills it from a file.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use super::listener::{ConnectionLimits, DEFAULT_CONNECTION_LIMITS};
use super::ratelimit::{DEFAULT_ENROL_LIMITS, EnrolLimits};
use crate::agent_plane::{HOST_SERVICE_PORT, NODE_CERT_VALIDITY_DAYS, enrol_port_for};
use crate::store::DEFAULT_HISTORY_LIMIT;

/// A node the daemon will enrol: its certificate gets these addresses as
/// IP SANs, whatever the node asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    pub cluster: String,
    pub addresses: Vec<IpAddr>,
}

/// Listen addresses, node directory and limits of one daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// `$HOSTCTL_HOME`: PKI, store, socket, pid file, log.
    pub home: PathBuf,
    /// Address both TCP listeners bind.
    pub listen: IpAddr,
    /// Also bind loopback (the default with a topology that does not set
    /// `hostAgent.listen`): QEMU's user-mode networking delivers what a
    /// guest sends to the host address to the host's loopback, and local
    /// tools may dial it. Loopback is reachable only from this machine.
    pub also_loopback: bool,
    /// Mutual-TLS Host service port (0 picks a free port, for tests).
    pub port: u16,
    /// Enrolment port (0 picks a free port).
    pub enrol_port: u16,
    /// The address nodes dial; `None` uses `listen` (which must then not be
    /// the unspecified address to be useful to nodes).
    pub advertise: Option<IpAddr>,
    pub nodes: BTreeMap<String, NodeEntry>,
    /// cluster → its control-plane node: who may upload etcd snapshots.
    pub control_planes: BTreeMap<String, String>,
    pub history_limit: u64,
    pub cert_validity_days: u32,
    /// Token buckets for enrolment attempts (see [`super::ratelimit`]).
    pub enrol_limits: EnrolLimits,
    /// Connection budgets and timeouts of both TCP listeners (see
    /// [`super::listener`]); fitted to the descriptor limit at start.
    pub connection_limits: ConnectionLimits,
    /// The host's clock: report and snapshot receipts are stamped with it
    /// and staleness is judged by it. Tests inject one to move time.
    pub clock: DaemonClock,
    /// The platform Git server's port on the listen addresses
    /// ([`crate::gitops::server`]); `None` serves none. A daemon made from
    /// a topology serves it on [`crate::gitops::GIT_PORT`]; the default
    /// (tests, benchmarks) does not.
    pub git_port: Option<u16>,
    /// The mutual-TLS `GET /metrics` port on the listen addresses
    /// ([`super::metrics`]); `None` serves none. A daemon made from a
    /// topology serves it on [`crate::agent_plane::HOST_METRICS_PORT`];
    /// the default (tests, benchmarks) does not.
    pub metrics_port: Option<u16>,
    /// mgmt's Vault, which the daemon unseals after a restart
    /// ([`super::vault_watch`]); `None` watches nothing (the default).
    pub vault: Option<String>,
}

/// The daemon's clock ([`certs::Clock`]), cloneable and printable so that
/// [`DaemonConfig`] stays both.
#[derive(Clone)]
pub struct DaemonClock(pub Arc<dyn certs::Clock>);

impl DaemonClock {
    pub fn now(&self) -> SystemTime {
        self.0.now()
    }
}

impl Default for DaemonClock {
    fn default() -> Self {
        DaemonClock(Arc::new(certs::SystemClock))
    }
}

impl std::fmt::Debug for DaemonClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DaemonClock")
    }
}

impl DaemonConfig {
    /// Defaults: loopback, the well-known ports, no nodes.
    pub fn new(home: PathBuf) -> DaemonConfig {
        DaemonConfig {
            home,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            also_loopback: false,
            port: HOST_SERVICE_PORT,
            enrol_port: enrol_port_for(HOST_SERVICE_PORT),
            advertise: None,
            nodes: BTreeMap::new(),
            control_planes: BTreeMap::new(),
            history_limit: DEFAULT_HISTORY_LIMIT,
            cert_validity_days: NODE_CERT_VALIDITY_DAYS,
            enrol_limits: DEFAULT_ENROL_LIMITS,
            connection_limits: DEFAULT_CONNECTION_LIMITS,
            clock: DaemonClock::default(),
            git_port: None,
            metrics_port: None,
            vault: None,
        }
    }

    /// Every address the TCP listeners bind: `listen`, then loopback when
    /// asked for and not already covered.
    pub fn listen_addresses(&self) -> Vec<IpAddr> {
        let mut all = vec![self.listen];
        let covered = self.listen.is_unspecified() || self.listen.is_loopback();
        if self.also_loopback && !covered {
            all.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        all
    }

    /// The address put into `EnrolResponse.host_endpoint` for a listener
    /// actually bound to `bound`.
    pub fn advertised(&self, bound: SocketAddr) -> SocketAddr {
        SocketAddr::new(self.advertise.unwrap_or(bound.ip()), bound.port())
    }

    pub fn socket_path(&self) -> PathBuf {
        socket_path(&self.home)
    }

    pub fn store_path(&self) -> PathBuf {
        self.home.join("state.redb")
    }
}

/// `$HOSTCTL_HOME/daemon.sock`: the control socket (mode 0600).
pub fn socket_path(home: &std::path::Path) -> PathBuf {
    home.join("daemon.sock")
}

/// `$HOSTCTL_HOME/daemon.pid`: pid of the running daemon, held locked.
pub fn pid_path(home: &std::path::Path) -> PathBuf {
    home.join("daemon.pid")
}

/// `$HOSTCTL_HOME/daemon.log`: stdout/stderr of a daemon started by the CLI.
pub fn log_path(home: &std::path::Path) -> PathBuf {
    home.join("daemon.log")
}
