//! `hostctl daemon`: the host side of the agent plane.
//!
//! One process per `$HOSTCTL_HOME` serves three listeners:
//! - the **Host** service (node reports) on mutual TLS, `listen:port`
//!   (default 7443), with the nodes' OTLP span relay ([`traces`]);
//! - the **Enrolment** service on server-authenticated TLS,
//!   `listen:port+1` (default 7444; see [`crate::agent_plane`]);
//! - the **Control** service for the CLI on `$HOSTCTL_HOME/daemon.sock`
//!   (0600).
//!
//! Beside them, when its config has a `metrics_port` (a daemon made from
//! a topology: always, 7448), the mutual-TLS metrics endpoint for mgmt's
//! Prometheus ([`metrics`]); failing to bind it fails the start, like the
//! agent plane's own ports.
//!
//! Also, when its config has a `git_port` (a daemon made from a
//! topology: always), it serves the platform Git repository read-only
//! over HTTPS on the same addresses ([`crate::gitops::server`], port
//! 7447), whether or not anything was published yet (a clone before the
//! first publish gets 404). That server failing to start is a warning:
//! the agent plane does not depend on it.
//!
//! Module map: [`config`] (what to serve), [`tls`] (server TLS configs),
//! [`authz`] (peer certificate → caller, method → roles), [`enrolment`]
//! (with [`ratelimit`], its token buckets),
//! [`reports`], [`control`] (the three services), [`staleness`],
//! [`listener`] (admission and TLS handshakes, with [`fdlimit`]),
//! [`state`] (what the services share), [`client`] (the CLI's typed
//! Control client), [`lifecycle`] (pid lock, spawning, `ensure_running`),
//! [`topology`] (a [`DaemonConfig`] from a topology file).
//!
//! Shutdown (Control.Shutdown, SIGTERM or SIGINT): listeners stop
//! accepting, open report streams end with UNAVAILABLE (nodes keep their
//! unacknowledged reports and re-send them to the next daemon), the store
//! commits what it has queued, and the socket file is removed.

pub mod authz;
pub mod bind;
pub mod client;
pub mod config;
pub mod control;
pub mod enrolment;
pub mod fdlimit;
pub mod lifecycle;
pub mod listener;
pub mod logfile;
pub mod metrics;
pub mod node_watch;
pub mod nodecerts;
pub mod ratelimit;
pub mod renewal;
pub mod reports;
pub mod staleness;
pub mod state;
pub mod tls;
pub mod topology;
pub mod traces;
pub mod vault_watch;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::v1::control_server::ControlServer;
use proto::v1::snapshot_sink_server::SnapshotSinkServer;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

pub use client::ControlClient;
pub use config::{DaemonClock, DaemonConfig, NodeEntry};
pub use lifecycle::ensure_running;

use crate::store::{Store, StoreError};
use state::{Connections, NodeChanges, Refusals, Shared};

/// How long a graceful stop may wait for connections to close.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long an enrolment connection past its age may finish its call.
const ENROL_AGE_GRACE: Duration = Duration::from_secs(5);

/// Keepalive pings on report streams, so a node that vanished without
/// closing its connection stops counting as "connected" within ~30 s.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Failures to start or stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS configuration refused: {0}")]
    TlsSetup(#[from] tls::TlsSetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node certificates' revocation floors cannot be read.
    #[error(transparent)]
    Pki(#[from] certs::PkiError),
    /// A file operation failed: which, on what file, and why (the
    /// workspace's one path-I/O error, [`fsio::Error`]).
    #[error(transparent)]
    Io(#[from] fsio::Error),
}

/// Requests a daemon's graceful stop.
#[derive(Debug, Clone)]
pub struct StopHandle(watch::Sender<bool>);

impl StopHandle {
    pub fn request(&self) {
        self.0.send_replace(true);
    }
}

type ServerTask = JoinHandle<Result<(), tonic::transport::Error>>;

/// A running daemon (its servers are tokio tasks in the caller's runtime).
pub struct Daemon {
    shared: Arc<Shared>,
    servers: Vec<ServerTask>,
    bound_host: SocketAddr,
    bound_enrol: SocketAddr,
    git: Option<crate::gitops::GitServer>,
    /// The metrics endpoint ([`metrics`]), when the config has a port.
    metrics: Option<metrics::MetricsEndpoint>,
    /// The Vault watcher ([`vault_watch`]), when there is a Vault to watch.
    vault_watch: Option<JoinHandle<()>>,
}

async fn bind_tcp(
    what: &'static str,
    addresses: &[std::net::IpAddr],
    port: u16,
) -> Result<(Vec<bind::Socket>, SocketAddr), DaemonError> {
    let addr = addresses
        .iter()
        .map(|ip| SocketAddr::new(*ip, port).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    bind::bind_all(what, addresses, port)
        .await
        .map_err(|source| DaemonError::Bind { what, addr, source })
}

fn bind_socket(path: &std::path::Path) -> Result<UnixListener, DaemonError> {
    let io = |what| {
        let at = fsio::Error::at(what, path);
        move |source| DaemonError::Io(at(source))
    };
    // The caller holds the pid lock, so a socket file here is a dead
    // daemon's leftover: it must not block this start.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot remove the stale socket")(e)),
    }
    let listener = UnixListener::bind(path).map_err(io("cannot bind the control socket"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io("cannot restrict the control socket"))?;
    Ok(listener)
}

impl Daemon {
    /// Opens the store and starts the three servers. The caller must hold
    /// the home's pid lock ([`lifecycle::PidLock`]) so that no other daemon
    /// serves the same socket and store.
    pub async fn start(config: DaemonConfig, pki: Arc<certs::Pki>) -> Result<Daemon, DaemonError> {
        let material = tls::ServerMaterial::from_pki(&pki);
        let fd_limit = fdlimit::raise();
        let limits = config.connection_limits.fit_to(fd_limit);
        tracing::info!(
            fd_limit,
            host_connections = limits.host.total,
            enrolment_connections = limits.enrolment.total,
            "connection limits"
        );
        let host_acceptor = material.host_acceptor()?;
        let enrol_acceptor = material.enrolment_acceptor()?;
        let store = Store::open(&config.store_path(), config.history_limit)?;
        let node_certs = Arc::new(nodecerts::NodeCerts::new(pki.cert_floors()?));
        let addresses = config.listen_addresses();
        let (host_listener, bound_host) =
            bind_tcp("the Host service", &addresses, config.port).await?;
        let (enrol_listener, bound_enrol) =
            bind_tcp("the Enrolment service", &addresses, config.enrol_port).await?;
        let control_listener = bind_socket(&config.socket_path())?;
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            host_endpoint: config.advertised(bound_host),
            enrol_endpoint: config.advertised(bound_enrol),
            tokens: pki.token_store(),
            node_certs: node_certs.clone(),
            renewals: renewal::Renewals::default(),
            pki,
            store,
            connections: Connections::default(),
            refusals: Refusals::default(),
            changes: NodeChanges::default(),
            shutdown,
            metrics: metrics::DaemonMetrics::for_nodes(config.nodes.keys()),
            config,
            traces: ::telemetry::relay::SpanBuffer::default(),
        });

        let snapshots = crate::snapshots::SnapshotStore::with_clock(
            &shared.config.home,
            shared.config.clock.0.clone(),
        );
        // A reception a crash interrupted left its partial file behind;
        // nothing else removes it (issue 13, item 13).
        match snapshots.remove_leftovers() {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "partial snapshot files removed"),
            Err(e) => tracing::warn!("cannot remove partial snapshot files: {e}"),
        }

        let stop = |s: Arc<Shared>| async move { s.shutdown_requested().await };
        let incoming = |what, tcp, admission: listener::ListenerLimits, tls| {
            listener::serve(listener::Listener {
                what,
                tcp,
                admission: Arc::new(listener::Admission::new(admission)),
                tls,
                handshake_timeout: limits.handshake_timeout,
            })
        };
        let host_incoming = incoming("Host service", host_listener, limits.host, host_acceptor);
        let enrol_incoming = incoming(
            "Enrolment service",
            enrol_listener,
            limits.enrolment,
            enrol_acceptor,
        );
        let host = Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .add_service(reports::server(shared.clone()))
            .add_service(traces::server(shared.clone()))
            .add_service(SnapshotSinkServer::new(
                crate::snapshots::sink::SinkService::new(
                    snapshots,
                    crate::snapshots::sink::Uploaders::from_config(&shared.config),
                    node_certs,
                )
                .with_offsite(shared.config.home.clone()),
            ))
            .serve_with_incoming_shutdown(host_incoming, stop(shared.clone()));
        let enrol = Server::builder()
            .timeout(Duration::from_secs(30))
            .max_connection_age(limits.enrolment_max_age)
            .max_connection_age_grace(ENROL_AGE_GRACE)
            .add_service(enrolment::server(shared.clone()))
            .serve_with_incoming_shutdown(enrol_incoming, stop(shared.clone()));
        let control = Server::builder()
            .add_service(ControlServer::new(control::ControlService::new(
                shared.clone(),
            )))
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(control_listener),
                stop(shared.clone()),
            );
        let git = match shared.config.git_port {
            Some(port) => {
                crate::gitops::server::start_for_daemon(
                    &shared.config.home,
                    addresses.clone(),
                    port,
                    shared.config.advertise,
                )
                .await
            }
            None => None,
        };
        let metrics = match shared.config.metrics_port {
            Some(port) => Some(metrics::start(shared.clone(), &material, &addresses, port).await?),
            None => None,
        };
        let vault_watch = match (&shared.config.vault, shared.pki.lab_root()) {
            (Some(address), Some(lab)) => {
                let target = crate::secrets::VaultTarget {
                    address: address.clone(),
                    ca_pem: lab.cert_pem().to_owned(),
                };
                let keys = vault::KeyDir::new(crate::secrets::key_dir(&shared.config.home));
                Some(tokio::spawn(vault_watch::watch(
                    target,
                    keys,
                    shared.config.home.clone(),
                    shared.shutdown.subscribe(),
                )))
            }
            _ => None,
        };
        tracing::info!(
            host = %bound_host,
            enrol = %bound_enrol,
            socket = %shared.config.socket_path().display(),
            "daemon serving"
        );
        Ok(Daemon {
            servers: vec![
                tokio::spawn(host),
                tokio::spawn(enrol),
                tokio::spawn(control),
            ],
            shared,
            bound_host,
            bound_enrol,
            git,
            metrics,
            vault_watch,
        })
    }

    /// The address the Host (mutual-TLS) listener is bound to.
    pub fn host_addr(&self) -> SocketAddr {
        self.bound_host
    }

    /// The address the Enrolment listener is bound to.
    pub fn enrol_addr(&self) -> SocketAddr {
        self.bound_enrol
    }

    /// The address the metrics endpoint is bound to, when it runs.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    /// The address the platform Git server is bound to, when it runs.
    pub fn git_addr(&self) -> Option<SocketAddr> {
        self.git.as_ref().map(crate::gitops::GitServer::local_addr)
    }

    pub fn socket_path(&self) -> PathBuf {
        self.shared.config.socket_path()
    }

    /// The report store (benchmarks and tests read it directly).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Asks the daemon to stop; [`Daemon::wait`] then returns.
    pub fn request_stop(&self) {
        self.stop_handle().request();
    }

    /// A handle that can request the stop from elsewhere (a signal task).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.shared.shutdown.clone())
    }

    /// Runs until a stop is requested, then stops gracefully: servers
    /// drain (bounded by a grace period), the store commits what is queued,
    /// the socket file is removed.
    pub async fn wait(self) -> Result<(), DaemonError> {
        self.shared.shutdown_requested().await;
        tracing::info!("daemon stopping");
        // One grace period for all servers together (they drain at the same
        // time, as tasks), not one each: a peer holding a connection open
        // on every listener must not multiply the stop's length.
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        if let Some(git) = self.git {
            git.stop().await;
        }
        if let Some(metrics) = self.metrics {
            // It stops on the same shutdown signal; a scrape in progress is
            // not worth waiting for.
            metrics.task.abort();
        }
        if let Some(watch) = self.vault_watch {
            watch.abort();
        }
        for server in self.servers {
            let abort = server.abort_handle();
            match tokio::time::timeout_at(deadline, server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!("server ended with an error: {e}"),
                Ok(Err(e)) => tracing::warn!("server task failed: {e}"),
                Err(_) => {
                    tracing::warn!("server did not drain in {STOP_GRACE:?}; closing it");
                    abort.abort();
                }
            }
        }
        // Certificate floors raised by use and not written yet
        // (nodecerts::NodeCerts::flush_soon).
        let certs = self.shared.node_certs.clone();
        match tokio::task::spawn_blocking(move || certs.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot record the nodes' certificate floors: {e}"),
            Err(e) => tracing::warn!("the certificate floors' last write failed: {e}"),
        }
        self.shared.store.close().await;
        let socket = self.shared.config.socket_path();
        if let Err(e) = std::fs::remove_file(&socket)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", socket.display());
        }
        tracing::info!("daemon stopped");
        Ok(())
    }

    /// Requests a stop and waits for it.
    pub async fn stop(self) -> Result<(), DaemonError> {
        self.request_stop();
        self.wait().await
    }
}
