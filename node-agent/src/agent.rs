//! Wiring: enrol (or reuse the stored identity), then run the reporter,
//! the Node service, the metrics endpoint (when `metricsListen` is set)
//! and certificate renewal until shutdown.
//!
//! Split into `start` (everything that can fail on configuration: identity,
//! binding the listener) and `run` (the long-running part), so a caller —
//! `main` or a test — learns about a bad setup before anything runs, and
//! can read the bound address when the config asks for port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use certs::{Clock, SystemClock};
use proto::v1::NodeMeta;
use tokio::net::TcpListener;
use tracing::info;

use crate::backoff::Backoff;
use crate::config::{Config, LogSourceKind};
use crate::enrol::{self, EnrolError};
use crate::etcd::EtcdTarget;
use crate::etcd::local::LocalSnapshots;
use crate::etcd::restore::runtime::CriRuntime;
use crate::etcd::restore::{Restorer, Timeouts};
use crate::etcd::schedule::{self, Schedule};
use crate::etcd::service::EtcdService;
use crate::etcd::snapshot::Taker;
use crate::exec::{self, Runner, SystemRunner};
use crate::host_link::HostLink;
use crate::identity::{IdentityCell, IdentityError, NodeIdentity};
use crate::kubeadm::attempt::Attempts;
use crate::kubeadm::health::NodeHealth;
use crate::kubeadm::ops::Operations;
use crate::kubeadm::runner::Cli;
use crate::kubeadm::service::KubeadmService;
use crate::logs::LogSource;
use crate::logs::file::FileSource;
use crate::logs::journald::JournaldSource;
use crate::prereq::run::Prerequisites;
use crate::prereq::service::ProvisioningService;
use crate::renewal::Renewer;
use crate::report::checks::Endpoints;
use crate::report::collector::{Collector, CollectorError};
use crate::report::{Outbox, SharedCollector, scheduler, sender};
use crate::service::{self, NodeService};
use crate::state::{StateDir, StateError};

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The state directory is unusable.
    #[error(transparent)]
    State(#[from] StateError),
    /// No identity could be obtained.
    #[error(transparent)]
    Enrol(#[from] EnrolError),
    /// sysinfo is unusable.
    #[error(transparent)]
    Collector(#[from] CollectorError),
    /// The Node service address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The Node service's TLS could not be set up.
    #[error("Node service TLS: {0}")]
    Tls(#[from] IdentityError),
    /// The Node service or the host endpoint failed.
    #[error("transport: {}", telemetry::error_chain::chain(.0))]
    Transport(#[from] tonic::transport::Error),
}

impl AgentError {
    /// Whether only a new enrolment token can get the agent going again;
    /// `main` exits with its own status for these, so a supervisor can be
    /// told not to restart it in vain (`RestartPreventExitStatus=`).
    pub fn needs_new_token(&self) -> bool {
        matches!(self, AgentError::Enrol(e) if e.needs_new_token())
    }
}

/// Where the agent's own log goes when `logSource` is `file`.
pub fn log_file_path(config: &Config) -> std::path::PathBuf {
    config.rooted("/var/log/hostctl/node-agent.log")
}

/// An enrolled agent with its listener bound, not yet running.
pub struct Started {
    config: Config,
    state: StateDir,
    identity: IdentityCell,
    listener: TcpListener,
    /// The metrics endpoint's listener, when `metricsListen` is set.
    metrics_listener: Option<TcpListener>,
    endpoints: Endpoints,
    clock: Arc<dyn Clock>,
}

impl Started {
    /// Probes the local health endpoints (kubelet, API server, etcd) at
    /// `endpoints` instead of kubeadm's defaults — for tests that stand in
    /// for them; reports and the `Kubeadm` service's "already done" answers
    /// both use them.
    pub fn with_endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// The Node service's address (useful when `listen` has port 0).
    pub fn node_addr(&self) -> Result<SocketAddr, std::io::Error> {
        self.listener.local_addr()
    }

    /// The metrics endpoint's address, when it is configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Decides when the certificate is due for renewal (and checks renewed
    /// ones) with `clock` instead of the system clock — tests move the
    /// date instead of waiting for it. [`start_with_clock`] also uses the
    /// clock for the stored certificate's check at start.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The identity in use now.
    pub fn identity(&self) -> Arc<NodeIdentity> {
        self.identity.current()
    }

    /// The identity cell: renewal publishes here, and everything that
    /// presents the identity reads from here (tests watch it).
    pub fn identity_cell(&self) -> IdentityCell {
        self.identity.clone()
    }

    /// Reports, serves and renews until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        let Started {
            config,
            state,
            identity,
            listener,
            metrics_listener,
            endpoints,
            clock,
        } = self;
        let instance = scheduler::new_instance_id();
        let collector =
            SharedCollector::new(Collector::new(&config, Arc::new(SystemRunner), endpoints)?);
        let outbox = Outbox::new(config.buffer_capacity);
        let link = HostLink::new(&config, identity.clone());
        let renewer = Renewer::new(link.clone(), state, &config.node, &config.ca_pem, clock);
        let logs: Arc<dyn LogSource> = match config.log_source {
            LogSourceKind::Journald => Arc::new(JournaldSource),
            LogSourceKind::File => Arc::new(FileSource::new(log_file_path(&config))),
        };
        let meta = NodeMeta {
            node: config.node.clone(),
            cluster: config.cluster.clone(),
        };
        let commands = exec::for_config(config.command_runner, &config.root);
        let provisioning = ProvisioningService::new(Prerequisites {
            root: config.root.clone(),
            state_dir: config.state_dir.clone(),
            runner: commands.clone(),
            meta: meta.clone(),
        });
        let kubeadm = kubeadm_service(&config, endpoints, logs.clone(), commands, meta.clone());
        let service = NodeService::new(
            meta,
            collector.clone(),
            instance.clone(),
            logs,
            renewer.clone(),
        );
        let etcd = etcd_service(&config);
        let snapshot_metrics = Arc::new(crate::metrics::SnapshotMetrics::default());
        let schedule = etcd_schedule(&config, link.clone(), snapshot_metrics.clone());
        let metrics = serve_metrics(
            metrics_listener,
            &config.ca_pem,
            identity.clone(),
            crate::metrics::Sources {
                outbox: outbox.clone(),
                snapshots: snapshot_metrics,
            },
        );
        let tls = crate::node_tls::server_config(&config.ca_pem, identity.clone())?;
        let interval = std::time::Duration::from_secs(u64::from(config.report_interval_seconds));
        info!(
            node = %config.node,
            instance = %instance,
            listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            host = %config.host.endpoint,
            "node agent running"
        );
        tokio::select! {
            r = service::serve(listener, tls, service, etcd, provisioning, kubeadm) => r?,
            () = schedule => {}
            r = metrics => r?,
            () = scheduler::run(collector, outbox.clone(), interval, instance.clone()) => {}
            () = sender::run(link, outbox, instance, Backoff::standard()) => {}
            () = renewer.run() => {}
            () = shutdown => info!("shutting down"),
        }
        Ok(())
    }
}

/// The Kubeadm service: kubeadm through the agent's command runner, health
/// from the same probes as reports, the kubelet journal from `logs`.
fn kubeadm_service(
    config: &Config,
    endpoints: Endpoints,
    logs: Arc<dyn LogSource>,
    commands: Arc<dyn Runner>,
    meta: NodeMeta,
) -> KubeadmService {
    let settings = &config.kubeadm;
    // `alwaysRun`: a stand-in kubeadm on a recording (local) node.
    let commands: Arc<dyn Runner> = if settings.always_run {
        Arc::new(SystemRunner)
    } else {
        commands
    };
    KubeadmService::new(Operations {
        root: config.root.clone(),
        kubeadm: Arc::new(Cli::new(settings.binary.clone(), commands)),
        health: NodeHealth {
            root: config.root.clone(),
            endpoints,
            logs,
        },
        meta,
        attempts: Attempts::new(&config.state_dir),
        join_attempts: settings.join_attempts,
        join_retry_delay: std::time::Duration::from_millis(settings.join_retry_delay_millis),
    })
}

/// The Etcd service, restoring through kubelet and containerd.
fn etcd_service(config: &Config) -> EtcdService {
    let target = etcd_target(config);
    let restorer = Restorer {
        root: config.root.clone(),
        cluster: config.cluster.clone(),
        target: target.clone(),
        runtime: Arc::new(CriRuntime),
        timeouts: Timeouts::default(),
    };
    EtcdService::new(config.control_plane, taker(config), target, restorer)
}

fn etcd_target(config: &Config) -> EtcdTarget {
    EtcdTarget {
        endpoint: config.etcd.endpoint.clone(),
        root: config.root.clone(),
    }
}

fn taker(config: &Config) -> Taker {
    Taker {
        cluster: config.cluster.clone(),
        node: config.node.clone(),
    }
}

/// The snapshot schedule of a control-plane node; never ends (and does
/// nothing on workers or with `intervalSeconds: 0`).
async fn etcd_schedule(
    config: &Config,
    host: HostLink,
    metrics: Arc<crate::metrics::SnapshotMetrics>,
) {
    let settings = &config.etcd.snapshot;
    if !config.control_plane || settings.interval_seconds == 0 {
        return std::future::pending().await;
    }
    let dir = settings
        .dir
        .clone()
        .unwrap_or_else(|| config.state_dir.join("snapshots"));
    let s = Schedule {
        target: etcd_target(config),
        taker: taker(config),
        local: LocalSnapshots::new(dir, settings.keep_local),
        interval: std::time::Duration::from_secs(settings.interval_seconds),
        metrics,
    };
    schedule::run(s, host).await;
}

/// The metrics endpoint on `listener`; never ends without one (or
/// while it serves), so it can sit in `run`'s `select!`.
async fn serve_metrics(
    listener: Option<TcpListener>,
    ca_pem: &str,
    identity: IdentityCell,
    sources: crate::metrics::Sources,
) -> Result<(), IdentityError> {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    crate::metrics::serve(listener, ca_pem, identity, sources, std::future::pending()).await?;
    std::future::pending().await
}

/// Obtains the identity (enrolling if needed; the token is then dropped
/// from memory) and binds the Node service's listener.
pub async fn start(config: Config) -> Result<Started, AgentError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// [`start`], checking the stored certificate (and later deciding on
/// renewal, see [`Started::with_clock`]) by `clock`'s date.
pub async fn start_with_clock(
    mut config: Config,
    clock: Arc<dyn Clock>,
) -> Result<Started, AgentError> {
    let state = StateDir::open(&config.state_dir)?;
    let token = config.enrolment_token.take();
    let identity = enrol::ensure_identity(&config, &state, token.as_ref(), clock.now()).await?;
    drop(token);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: config.listen,
            source,
        })?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| AgentError::Listen { addr, source })?,
        ),
        None => None,
    };
    Ok(Started {
        config,
        state,
        identity: IdentityCell::new(identity),
        listener,
        metrics_listener,
        endpoints: Endpoints::default(),
        clock,
    })
}
