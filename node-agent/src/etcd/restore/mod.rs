//! Restoring a control plane's etcd from a snapshot the host streams.
//!
//! The choreography follows the kubeadm documentation ("Restoring an etcd
//! cluster"), as one operation with a progress event per step:
//!
//! 1. `restore/check`: the operator confirmed and the snapshot names this
//!    node's cluster; the etcd manifest is readable.
//! 2. `restore/receive`: the snapshot lands next to the data directory and
//!    its trailing SHA-256 and the host's trailer must match.
//! 3. `restore/stop`: `etcd.yaml` and `kube-apiserver.yaml` move out of the
//!    manifests directory into `/etc/kubernetes/hostctl-restore-<time>/`,
//!    and the agent waits until neither container runs.
//! 4. `restore/etcdutl`: `etcdutl snapshot restore` into a **new** data
//!    directory `<old>-restored-<time>` with the manifest's name, initial
//!    cluster and peer URL.
//! 5. `restore/start-etcd`: `etcd.yaml`, with only the `etcd-data` hostPath
//!    changed, goes back; the agent waits for etcd and checks its revision
//!    (`restore/verify`) before the API server may write to it.
//! 6. `restore/start-apiserver`: `kube-apiserver.yaml` goes back.
//!
//! The old data directory is never touched and the original `etcd.yaml`
//! stays in the aside directory. A failure after step 3 rolls back by
//! itself: the original manifests go back (`restore/rollback`), kubelet
//! runs the control plane on the old data again, and the same restore can
//! simply be asked for again; a regretted success is rolled back by
//! copying the aside manifests, as the final message says.
//!
//! A start message with a `seed` ([`seed`]) restores instead onto a node
//! kubeadm has not initialised (the lost-control-plane recovery): nothing
//! runs, so there is nothing to stop, start or verify; the data lands in
//! the directory kubeadm's etcd will open.

pub mod manifest;
pub mod runtime;
mod seed;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use proto::v1::{
    Error as ApiError, ErrorCode, EtcdSeed, NodeMeta, OperationDone, ProgressEvent, RestoreChunk,
    SnapshotMeta, progress_event::Outcome, restore_chunk::Kind,
};
use tokio::sync::mpsc;
use tokio_stream::Stream;

use self::manifest::{EtcdManifest, ManifestError};
use self::runtime::{ControlPlaneRuntime, RestoreCommand};
use self::stage::next_kind;
use super::{EtcdError, EtcdTarget};
use crate::config::rooted;

const MANIFESTS: &str = "/etc/kubernetes/manifests";
const ETCD: &str = "etcd";
const APISERVER: &str = "kube-apiserver";

/// How long each wait may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Until etcd and the API server are gone after their manifests moved.
    pub stop: Duration,
    /// Until etcd runs and answers after its manifest is back.
    pub start: Duration,
    /// Between checks.
    pub poll: Duration,
}

impl Default for Timeouts {
    /// kubelet notices manifest changes within its sync period (~20 s);
    /// pulling nothing, etcd starts in seconds.
    fn default() -> Self {
        Timeouts {
            stop: Duration::from_secs(120),
            start: Duration::from_secs(180),
            poll: Duration::from_secs(1),
        }
    }
}

/// Why a restore stopped.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("invalid seed: {0}")]
    Seed(String),
    #[error("malformed restore stream: {0}")]
    Protocol(String),
    #[error("snapshot refused: {0}")]
    Integrity(#[from] proto::snapshot::IntegrityError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Runtime(#[from] crate::exec::ExecError),
    #[error(transparent)]
    Etcd(EtcdError),
    #[error("timed out after {0:?}: {1}")]
    Timeout(Duration, String),
    #[error("restored etcd is at revision {actual}, the snapshot at {expected}")]
    Revision { expected: i64, actual: i64 },
}

impl From<EtcdError> for RestoreError {
    fn from(e: EtcdError) -> Self {
        match e {
            EtcdError::Integrity(i) => RestoreError::Integrity(i),
            other => RestoreError::Etcd(other),
        }
    }
}

impl RestoreError {
    fn code(&self) -> ErrorCode {
        match self {
            RestoreError::Refused(_) => ErrorCode::FailedPrecondition,
            RestoreError::Protocol(_) | RestoreError::Integrity(_) | RestoreError::Seed(_) => {
                ErrorCode::InvalidArgument
            }
            RestoreError::Timeout(..) => ErrorCode::Timeout,
            RestoreError::Runtime(_) => ErrorCode::CommandFailed,
            _ => ErrorCode::Internal,
        }
    }
}

/// Sends progress events for one restore.
pub struct Progress {
    tx: mpsc::Sender<Result<ProgressEvent, tonic::Status>>,
    meta: NodeMeta,
}

impl Progress {
    /// Events for `meta`'s node go to `tx`.
    pub fn new(tx: mpsc::Sender<Result<ProgressEvent, tonic::Status>>, meta: NodeMeta) -> Self {
        Progress { tx, meta }
    }

    async fn emit(&self, phase: &str, message: String, percent: f32, outcome: Option<Outcome>) {
        tracing::info!(phase, "{message}");
        let event = ProgressEvent {
            meta: Some(self.meta.clone()),
            phase: phase.to_owned(),
            message,
            percent,
            at: Some(proto::timestamp(SystemTime::now())),
            outcome,
        };
        // A caller that went away does not stop a restore midway.
        let _ = self.tx.send(Ok(event)).await;
    }

    /// One step's event.
    pub async fn step(&self, phase: &str, message: impl Into<String>, percent: f32) {
        self.emit(phase, message.into(), percent, None).await;
    }

    /// The final event of a successful restore.
    pub async fn done(&self, message: String) {
        let done = Outcome::Done(OperationDone {
            already_done: false,
        });
        self.emit("restore/done", message, 100.0, Some(done)).await;
    }

    /// The final event of a failed restore; `detail` says how to roll back.
    pub async fn failed(&self, phase: &str, code: ErrorCode, message: String, detail: String) {
        let error = Outcome::Error(ApiError {
            code: code as i32,
            message: message.clone(),
            detail,
        });
        self.emit(phase, message, -1.0, Some(error)).await;
    }
}

/// Restores etcd on this control-plane node.
pub struct Restorer {
    pub root: PathBuf,
    pub cluster: String,
    pub target: EtcdTarget,
    pub runtime: Arc<dyn ControlPlaneRuntime>,
    pub timeouts: Timeouts,
}

/// The paths of one restore attempt.
#[derive(Debug, Clone)]
struct Plan {
    manifests: PathBuf,
    aside: PathBuf,
    old_dir: String,
    new_dir: String,
}

impl Plan {
    fn rollback(&self) -> String {
        format!(
            "the previous data directory {} was not modified. To roll back: copy {}/etcd.yaml \
             (it points at {}) and {}/kube-apiserver.yaml back into {}, replacing what is there",
            self.old_dir,
            self.aside.display(),
            self.old_dir,
            self.aside.display(),
            self.manifests.display()
        )
    }
}

/// The chunks of a restore as they arrive (a gRPC stream in production).
pub type Inbound =
    std::pin::Pin<Box<dyn Stream<Item = Result<RestoreChunk, tonic::Status>> + Send>>;

impl Restorer {
    /// Runs a restore from `inbound`, reporting on `progress`; the last
    /// event carries the outcome.
    pub async fn run(&self, inbound: Inbound, progress: &Progress) {
        let mut phase = "restore/check";
        let mut rollback = String::new();
        let mut moved = None;
        match self
            .attempt(inbound, progress, &mut phase, &mut rollback, &mut moved)
            .await
        {
            Ok(message) => progress.done(message).await,
            Err(e) => {
                tracing::warn!(phase, error = %e, "restore failed");
                // The control plane was stopped for this restore: it runs
                // again on its old data, so the same restore can simply be
                // asked for again; only if that fails is it left to hand.
                if let Some(plan) = moved {
                    rollback = match roll_back(&plan).await {
                        Ok(()) => {
                            progress
                                .step(
                                    "restore/rollback",
                                    format!(
                                        "the original etcd.yaml and kube-apiserver.yaml are back: \
                                         etcd restarts on {}",
                                        plan.old_dir
                                    ),
                                    0.0,
                                )
                                .await;
                            format!(
                                "rolled back: the original manifests are back in {} (etcd runs \
                                 on {} again, unchanged); {} is left for inspection; the same \
                                 restore can be run again",
                                plan.manifests.display(),
                                plan.old_dir,
                                plan.new_dir
                            )
                        }
                        Err(undo) => format!("{rollback} (the automatic rollback failed: {undo})"),
                    };
                }
                progress
                    .failed(phase, e.code(), e.to_string(), rollback)
                    .await;
            }
        }
    }

    async fn attempt(
        &self,
        mut inbound: Inbound,
        progress: &Progress,
        phase: &mut &'static str,
        rollback: &mut String,
        moved: &mut Option<Plan>,
    ) -> Result<String, RestoreError> {
        let (meta, seed) = self.check_start(&mut inbound).await?;
        if let Some(seed) = seed {
            return self
                .seed(inbound, &meta, &seed, progress, phase, rollback)
                .await;
        }
        let manifests = rooted(&self.root, MANIFESTS);
        let manifest = EtcdManifest::load(&manifests.join("etcd.yaml"))?;
        let stamp = now_stamp();
        let plan = Plan {
            aside: rooted(
                &self.root,
                &format!("/etc/kubernetes/hostctl-restore-{stamp}"),
            ),
            new_dir: format!("{}-restored-{stamp}", manifest.data_dir),
            old_dir: manifest.data_dir.clone(),
            manifests,
        };
        announce(progress, phase, &meta).await;

        *phase = "restore/receive";
        let new_dir = rooted(&self.root, &plan.new_dir);
        let staged = self
            .stage(&mut inbound, &new_dir, &stamp, progress, phase, 20.0)
            .await?;

        *phase = "restore/stop";
        *rollback = plan.rollback();
        *moved = Some(plan.clone());
        self.stop_control_plane(&plan).await?;
        progress
            .step(
                phase,
                format!(
                    "moved etcd and kube-apiserver manifests to {}",
                    plan.aside.display()
                ),
                30.0,
            )
            .await;
        self.wait_until(false, &[ETCD, APISERVER], self.timeouts.stop)
            .await?;
        progress
            .step(phase, "etcd and kube-apiserver are stopped", 40.0)
            .await;

        *phase = "restore/etcdutl";
        let command = RestoreCommand {
            snapshot: staged.0.clone(),
            data_dir: new_dir.clone(),
            name: manifest.name.clone(),
            initial_cluster: manifest.initial_cluster.clone(),
            peer_urls: manifest.peer_urls.clone(),
            image: manifest.image.clone(),
        };
        self.runtime.restore(&command).await?;
        progress
            .step(phase, format!("restored into {}", plan.new_dir), 60.0)
            .await;

        *phase = "restore/start-etcd";
        let text =
            manifest
                .with_data_dir(&plan.new_dir)
                .map_err(|message| ManifestError::Invalid {
                    path: plan.aside.join("etcd.yaml"),
                    message,
                })?;
        let etcd_yaml = plan.manifests.join("etcd.yaml");
        put_manifest(&etcd_yaml, &plan.aside.join("etcd.yaml"), text).await?;
        self.wait_until(true, &[ETCD], self.timeouts.start).await?;
        progress
            .step(phase, format!("etcd runs on {}", plan.new_dir), 70.0)
            .await;

        *phase = "restore/verify";
        let revision = self.verify(&meta).await?;
        progress
            .step(phase, format!("etcd answers at revision {revision}"), 85.0)
            .await;

        *phase = "restore/start-apiserver";
        self.move_back(&plan, "kube-apiserver.yaml").await?;
        progress
            .step(
                phase,
                "kube-apiserver manifest is back; kubelet starts it",
                95.0,
            )
            .await;
        Ok(format!(
            "etcd restored to revision {revision} in {}; the previous data directory {} is kept. \
             To roll back: copy {}/etcd.yaml over {}",
            plan.new_dir,
            plan.old_dir,
            plan.aside.display(),
            etcd_yaml.display()
        ))
    }

    /// Reads the `start` message: confirmed and of this node's cluster;
    /// returns the snapshot's metadata and the seed, if any.
    async fn check_start(
        &self,
        inbound: &mut Inbound,
    ) -> Result<(SnapshotMeta, Option<EtcdSeed>), RestoreError> {
        let first = next_kind(inbound).await?;
        let Some(Kind::Start(start)) = first else {
            return Err(RestoreError::Protocol(
                "the first message must be `start`".into(),
            ));
        };
        let meta = start.meta.unwrap_or_default();
        if !start.confirmed {
            return Err(RestoreError::Refused(
                "a restore replaces the cluster's state and needs confirmation (--yes)".into(),
            ));
        }
        if meta.cluster != self.cluster {
            return Err(RestoreError::Refused(format!(
                "the snapshot belongs to cluster {:?}, this node to {:?}",
                meta.cluster, self.cluster
            )));
        }
        Ok((meta, start.seed))
    }

    async fn stop_control_plane(&self, plan: &Plan) -> Result<(), RestoreError> {
        tokio::fs::create_dir_all(&plan.aside)
            .await
            .map_err(EtcdError::io("creating", &plan.aside))?;
        for name in ["kube-apiserver.yaml", "etcd.yaml"] {
            let from = plan.manifests.join(name);
            match fsio::nonblocking::rename(&from, &plan.aside.join(name)).await {
                Ok(()) => {}
                Err(e)
                    if e.source.kind() == std::io::ErrorKind::NotFound && name != "etcd.yaml" => {}
                Err(e) => return Err(EtcdError::io("moving", &from)(e.source).into()),
            }
        }
        Ok(())
    }

    async fn move_back(&self, plan: &Plan, name: &str) -> Result<(), RestoreError> {
        let from = plan.aside.join(name);
        match fsio::nonblocking::rename(&from, &plan.manifests.join(name)).await {
            Ok(()) => Ok(()),
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EtcdError::io("moving back", &from)(e.source).into()),
        }
    }

    async fn wait_until(
        &self,
        up: bool,
        components: &[&str],
        limit: Duration,
    ) -> Result<(), RestoreError> {
        let start = Instant::now();
        loop {
            let mut pending = Vec::new();
            for c in components {
                if self.runtime.running(c).await? != up {
                    pending.push(*c);
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= limit {
                let state = if up { "running" } else { "stopped" };
                return Err(RestoreError::Timeout(
                    limit,
                    format!("{} not {state}", pending.join(", ")),
                ));
            }
            tokio::time::sleep(self.timeouts.poll).await;
        }
    }

    /// Waits for etcd to answer and checks it holds the snapshot's revision.
    async fn verify(&self, meta: &SnapshotMeta) -> Result<i64, RestoreError> {
        let start = Instant::now();
        let revision = loop {
            let attempt = async {
                let mut client = self.target.connect().await?;
                EtcdTarget::status(&mut client).await
            };
            match attempt.await {
                Ok((revision, _)) => break revision,
                Err(e) if start.elapsed() >= self.timeouts.start => {
                    return Err(RestoreError::Timeout(
                        self.timeouts.start,
                        format!("etcd does not answer: {e}"),
                    ));
                }
                Err(_) => tokio::time::sleep(self.timeouts.poll).await,
            }
        };
        let ok = if meta.revision_exact {
            revision == meta.revision
        } else {
            revision >= meta.revision
        };
        if ok {
            Ok(revision)
        } else {
            Err(RestoreError::Revision {
                expected: meta.revision,
                actual: revision,
            })
        }
    }
}

/// `restore/check`'s event: which snapshot is being restored.
async fn announce(progress: &Progress, phase: &str, meta: &SnapshotMeta) {
    progress
        .step(
            phase,
            format!(
                "restoring revision {} of cluster {} taken by {}",
                meta.revision, meta.cluster, meta.node
            ),
            0.0,
        )
        .await;
}

/// The current time as `YYYYMMDDTHHMMSSZ`, naming what a restore creates.
fn now_stamp() -> String {
    proto::snapshot::utc_stamp(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// Writes a static-pod manifest into kubelet's manifests directory as one
/// atomic replacement ([`fsio::nonblocking::write_atomic`]): kubelet
/// watches the directory and would start a pod from a half-written file,
/// and it skips the hidden temporary name. The manifest keeps the mode of
/// `original` (kubeadm writes 0600), 0600 if that cannot be read.
/// Puts the original manifests of `plan` back over whatever the restore
/// left in the manifests directory (copies: the aside directory keeps them
/// as the record of what ran before).
async fn roll_back(plan: &Plan) -> Result<(), EtcdError> {
    for name in ["etcd.yaml", "kube-apiserver.yaml"] {
        let original = plan.aside.join(name);
        let text = match tokio::fs::read_to_string(&original).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(EtcdError::io("reading", &original)(e)),
        };
        put_manifest(&plan.manifests.join(name), &original, text).await?;
    }
    Ok(())
}

async fn put_manifest(path: &Path, original: &Path, text: String) -> Result<(), EtcdError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = tokio::fs::metadata(original)
        .await
        .map_or(0o600, |m| m.permissions().mode() & 0o777);
    Ok(fsio::nonblocking::write_atomic(path, text.into_bytes(), mode).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The restored manifest lands whole, with the original's mode, and
    /// nothing else appears in the directory kubelet watches.
    #[tokio::test]
    async fn the_restored_manifest_is_replaced_whole_with_the_original_mode()
    -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let (manifests, aside) = (root.path().join("manifests"), root.path().join("aside"));
        std::fs::create_dir_all(&manifests)?;
        std::fs::create_dir_all(&aside)?;
        let original = aside.join("etcd.yaml");
        std::fs::write(&original, "kind: Pod # old\n")?;
        std::fs::set_permissions(&original, std::fs::Permissions::from_mode(0o600))?;
        let etcd_yaml = manifests.join("etcd.yaml");
        put_manifest(&etcd_yaml, &original, "kind: Pod # restored\n".into()).await?;
        assert_eq!(
            std::fs::read_to_string(&etcd_yaml)?,
            "kind: Pod # restored\n"
        );
        let mode = std::fs::metadata(&etcd_yaml)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(&manifests)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names, ["etcd.yaml"]);
        Ok(())
    }
}
