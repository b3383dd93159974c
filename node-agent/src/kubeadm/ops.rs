//! Init, join and reset as progress streams.
//!
//! Every kubeadm output line becomes a `ProgressEvent` whose phase is
//! `kubeadm/[<marker>]` (the marker kubeadm printed last, e.g.
//! `kubeadm/[certs]`), so the host sees exactly what an operator at the
//! console would; the final event (phase `kubeadm`) carries `done` or the
//! error. A failure's `Error.detail` is the output's tail followed by the
//! kubelet journal's tail: most failed inits are a kubelet that could not
//! start a static pod, and only its journal says why.
//!
//! Join retries by failure class (see [`super::output`]): discovery
//! failures (API server or token not usable yet) are retried as they are,
//! failed actions after `kubeadm reset -f`, preflight and validation
//! failures never (a retry would fail the same way). Init is never retried
//! here: the host holds the per-cluster init lock and decides.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::v1::progress_event::Outcome as Final;
use proto::v1::{
    Error as ApiError, KubeadmInitRequest, KubeadmJoinRequest, NodeMeta, OperationDone,
    ProgressEvent,
};
use tokio::sync::mpsc;

use super::KubeadmError;
use super::attempt::Attempts;
use super::health::{NodeHealth, Probe};
use super::output::{FailureClass, INIT_PHASES, JOIN_PHASES, PhaseTracker, phase_of};
use super::pki;
use super::runner::{Kubeadm, Outcome};
use crate::backoff::Backoff;

/// Phase of the final event and of the agent's own steps' prefix.
pub const PHASE: &str = "kubeadm";
/// The attempt records' names ([`super::attempt`]).
const INIT: &str = "init";
const JOIN: &str = "join";
/// Most the join backoff waits between attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The stream a caller reads.
pub type Events = mpsc::Sender<Result<ProgressEvent, tonic::Status>>;

/// How init, join and reset run on this node.
#[derive(Clone)]
pub struct Operations {
    /// The node's `/` (the config's `root`).
    pub root: PathBuf,
    pub kubeadm: Arc<dyn Kubeadm>,
    pub health: NodeHealth,
    pub meta: NodeMeta,
    /// Which commands this agent started and has not seen succeed.
    pub attempts: Attempts,
    /// Join attempts before giving up on a retryable failure (≥ 1).
    pub join_attempts: u32,
    /// Base delay between join attempts.
    pub join_retry_delay: Duration,
}

/// Which kubeadm command to stream.
#[derive(Debug, Clone, Copy)]
enum Command<'a> {
    Init(&'a std::path::Path, &'a [String]),
    Join(&'a std::path::Path),
    Reset,
}

impl Operations {
    /// Places the CA set and configuration and runs `kubeadm init`, or
    /// answers `Ok(true)` (already done) on an initialised, healthy control
    /// plane — unless this agent's own init there never succeeded, which
    /// is reset first ([`super::attempt`]). The caller sends the final
    /// event with [`Operations::finish`] (after releasing the node, so a
    /// caller that reacts to it at once is not refused as concurrent).
    pub async fn init(
        &self,
        req: &KubeadmInitRequest,
        events: &Events,
    ) -> Result<bool, KubeadmError> {
        require_config(&req.config_yaml)?;
        let probe = self.health.control_plane().await;
        if self.already_done(INIT, probe, events).await? {
            return Ok(true);
        }
        let placed = pki::place(&self.root, &req.files)?;
        let config = pki::write_config(&self.root, &req.config_yaml)?;
        self.send(
            events,
            format!("{PHASE}/place"),
            format!("placed {} files and the configuration", placed.len()),
            0.0,
            None,
        )
        .await;
        // A seed restore put the cluster's etcd data in place on purpose
        // (the lost-node recovery): kubeadm may open it.
        if let Some(seed) = crate::etcd::seeded::read(&self.root)
            && !crate::config::rooted(&self.root, &seed.data_dir)
                .join("member")
                .is_dir()
        {
            return Err(KubeadmError::SeedLost(format!(
                "etcd's data was restored into {} for this init (revision {} of {}), but it is \
                 gone; an init now would start an empty etcd. Restore it again: \
                 `hostctl recover node <this node> --yes --restart`",
                seed.data_dir, seed.revision, seed.cluster
            )));
        }
        let waived = crate::etcd::seeded::waived_checks(&self.root);
        if !waived.is_empty() {
            self.send(
                events,
                format!("{PHASE}/place"),
                format!(
                    "etcd's data directory holds a restored snapshot: waiving {}",
                    waived.join(", ")
                ),
                0.0,
                None,
            )
            .await;
        }
        self.attempts.begin(INIT)?;
        match self
            .stream(Command::Init(&config, &waived), INIT_PHASES, events)
            .await?
        {
            Outcome::Succeeded => {
                self.attempts.clear(INIT)?;
                crate::etcd::seeded::clear(&self.root)?;
                Ok(false)
            }
            Outcome::Failed {
                status,
                class,
                tail,
            } => Err(self.failed("init", &class, status, &tail).await),
        }
    }

    /// Writes the configuration and runs `kubeadm join`, retrying by class,
    /// or answers `Ok(true)` on a joined node whose kubelet is healthy
    /// (unless this agent's own join there never succeeded: reset first).
    pub async fn join(
        &self,
        req: &KubeadmJoinRequest,
        events: &Events,
    ) -> Result<bool, KubeadmError> {
        require_config(&req.config_yaml)?;
        let probe = self.health.kubelet().await;
        if self.already_done(JOIN, probe, events).await? {
            return Ok(true);
        }
        let config = pki::write_config(&self.root, &req.config_yaml)?;
        self.attempts.begin(JOIN)?;
        let attempts = self.join_attempts.max(1);
        let mut backoff = Backoff::new(self.join_retry_delay, MAX_RETRY_DELAY);
        let mut attempt = 1;
        loop {
            let (status, class, tail) = match self
                .stream(Command::Join(&config), JOIN_PHASES, events)
                .await?
            {
                Outcome::Succeeded => {
                    self.attempts.clear(JOIN)?;
                    return Ok(false);
                }
                Outcome::Failed {
                    status,
                    class,
                    tail,
                } => (status, class, tail),
            };
            let retryable = matches!(class, FailureClass::Discovery | FailureClass::Action { .. });
            if !retryable || attempt == attempts {
                return Err(self.failed("join", &class, status, &tail).await);
            }
            let how = if matches!(class, FailureClass::Action { .. }) {
                "after kubeadm reset -f"
            } else {
                "without reset: nothing was changed"
            };
            self.send(
                events,
                format!("{PHASE}/retry"),
                format!(
                    "join attempt {attempt} of {attempts} failed ({}); retrying {how}",
                    class.name()
                ),
                -1.0,
                None,
            )
            .await;
            if let FailureClass::Action { .. } = class {
                self.kubeadm_reset(events).await?;
            }
            tokio::time::sleep(self.join_retry_delay.max(backoff.next_delay())).await;
            attempt += 1;
        }
    }

    /// Runs `kubeadm reset -f` and removes the files init/join placed.
    pub async fn reset(&self, events: &Events) -> Result<bool, KubeadmError> {
        self.kubeadm_reset(events).await?;
        pki::remove_placed(&self.root)?;
        self.attempts.clear(INIT)?;
        self.attempts.clear(JOIN)?;
        self.send(
            events,
            format!("{PHASE}/cleanup"),
            "removed the placed CA set, admission configuration and kubeadm configuration".into(),
            99.0,
            None,
        )
        .await;
        Ok(false)
    }

    /// What the node's state means for `command` (init or join), probed by
    /// `probe`: `Ok(true)` when it is already done; `Ok(false)` to run it —
    /// on a clean node, or after resetting the leftovers of this agent's
    /// own unfinished attempt; an error with the way out on a node that
    /// kubeadm set up but is unhealthy.
    async fn already_done(
        &self,
        command: &'static str,
        probe: Probe,
        events: &Events,
    ) -> Result<bool, KubeadmError> {
        let (file, what, doing) = if command == INIT {
            (
                super::health::ADMIN_CONF,
                "the control plane",
                "initialising",
            )
        } else {
            (super::health::KUBELET_CONF, "kubelet", "joining")
        };
        match probe {
            Probe::Absent => Ok(false),
            _ if self.attempts.unfinished(command) => {
                self.recover(command, events).await?;
                Ok(false)
            }
            Probe::Healthy => Ok(true),
            Probe::Unhealthy(why) => Err(KubeadmError::Unhealthy(format!(
                "{file} exists but {what} is not healthy ({why}); reset the node (Kubeadm.Reset) before {doing} it again"
            ))),
        }
    }

    /// Resets a node on which this agent's own `command` never succeeded,
    /// so the command runs again from scratch rather than on its leftovers.
    async fn recover(&self, command: &'static str, events: &Events) -> Result<(), KubeadmError> {
        self.send(
            events,
            format!("{PHASE}/recover"),
            format!(
                "the previous kubeadm {command} on this node did not succeed; \
                 resetting the node (kubeadm reset -f) before running it again"
            ),
            0.0,
            None,
        )
        .await;
        self.kubeadm_reset(events).await?;
        Ok(())
    }

    /// `kubeadm reset -f`, streamed; its failure is the operation's error.
    async fn kubeadm_reset(&self, events: &Events) -> Result<(), KubeadmError> {
        match self.stream(Command::Reset, &[], events).await? {
            Outcome::Succeeded => Ok(()),
            Outcome::Failed {
                status,
                class,
                tail,
            } => Err(self.failed("reset", &class, status, &tail).await),
        }
    }

    /// Runs one kubeadm command, turning each output line into an event.
    async fn stream(
        &self,
        command: Command<'_>,
        order: &'static [&'static str],
        events: &Events,
    ) -> Result<Outcome, KubeadmError> {
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let forward = async {
            let mut tracker = PhaseTracker::new(order);
            let mut phase = match command {
                Command::Reset => "reset".to_owned(),
                _ => "start".to_owned(),
            };
            let mut percent = if order.is_empty() { -1.0 } else { 0.0 };
            while let Some(line) = rx.recv().await {
                if line.trim().is_empty() {
                    continue;
                }
                if let Some(p) = phase_of(&line) {
                    phase = p.to_owned();
                    if !order.is_empty() {
                        percent = tracker.percent(p);
                    }
                }
                self.send(events, format!("{PHASE}/[{phase}]"), line, percent, None)
                    .await;
            }
        };
        let run = async {
            let r = match command {
                Command::Init(config, waived) => self.kubeadm.init(config, waived, &tx).await,
                Command::Join(config) => self.kubeadm.join(config, &tx).await,
                Command::Reset => self.kubeadm.reset(&tx).await,
            };
            drop(tx);
            r
        };
        let (result, ()) = tokio::join!(run, forward);
        result
    }

    /// The error for a failed run, with the output and journal tails.
    async fn failed(
        &self,
        command: &'static str,
        class: &FailureClass,
        status: i32,
        tail: &str,
    ) -> KubeadmError {
        let journal = self.health.kubelet_journal().await;
        KubeadmError::Failed {
            command,
            class: class.name(),
            status,
            detail: format!(
                "kubeadm output (last lines):\n{tail}\n\nkubelet journal (last {} lines):\n{journal}",
                super::health::JOURNAL_LINES
            ),
        }
    }

    /// Sends the final event for `result`.
    pub async fn finish(&self, events: &Events, result: &Result<bool, KubeadmError>) {
        let (message, outcome) = match result {
            Ok(true) => (
                "already done: nothing to do".to_owned(),
                Final::Done(OperationDone { already_done: true }),
            ),
            Ok(false) => (
                "done".to_owned(),
                Final::Done(OperationDone {
                    already_done: false,
                }),
            ),
            Err(e) => {
                tracing::warn!("kubeadm operation failed: {e}");
                (
                    e.to_string(),
                    Final::Error(ApiError {
                        code: e.code() as i32,
                        message: e.to_string(),
                        detail: e.detail(),
                    }),
                )
            }
        };
        let percent = if result.is_ok() { 100.0 } else { -1.0 };
        self.send(events, PHASE.to_owned(), message, percent, Some(outcome))
            .await;
    }

    async fn send(
        &self,
        events: &Events,
        phase: String,
        message: String,
        percent: f32,
        outcome: Option<Final>,
    ) {
        let event = ProgressEvent {
            meta: Some(self.meta.clone()),
            phase,
            message,
            percent,
            at: Some(proto::timestamp(SystemTime::now())),
            outcome,
        };
        // A caller that went away does not stop kubeadm: a half-run init
        // is worse than a finished one nobody watched.
        let _ = events.send(Ok(event)).await;
    }
}

fn require_config(yaml: &str) -> Result<(), KubeadmError> {
    if yaml.trim().is_empty() {
        return Err(KubeadmError::InvalidRequest("config_yaml is empty".into()));
    }
    Ok(())
}
