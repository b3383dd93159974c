//! `hostctl recover resource <cluster> KIND/NAME`: a deleted resource
//! (spec §10.3, RTO 5 min), the steps of [`crate::recover::resource`] run
//! by the shared [`super::runner`] against the cluster's API server and
//! mgmt's (where Argo CD's Applications are). Every wait is polled up to
//! `--within`; a rerun continues with the recorded source and finds the
//! Restore or the sync an earlier run started instead of starting another.

use super::kube::{Look, Session, get, list, merge_patch, note};
use super::runner::{self, Scenario};
use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::recover::record::Record;
use crate::recover::resource::{
    self as rules, Destination, ResourceError, STEPS, Source, Sync, Target,
};
use crate::recover::velero::{newest_backup, usable};
use crate::workspace::Workspace;
use anyhow::{anyhow, bail};
use std::time::{Duration, SystemTime};

/// Velero's namespace and Argo CD's.
const VELERO_NS: &str = crate::addons::velero::NAMESPACE;
const ARGOCD_NS: &str = crate::addons::argocd::NAMESPACE;

#[derive(Debug, clap::Args)]
pub struct ResourceArgs {
    /// The cluster (see the topology).
    pub cluster: String,
    /// What was deleted: `KIND/NAME` (`deployment/web`,
    /// `configmaps/x`, `deployments.apps/web`).
    #[arg(value_name = "KIND/NAME")]
    pub resource: String,
    /// Its namespace (default `default`; none for a cluster-scoped kind).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Restore from this Velero Backup (Completed, on the cluster's
    /// location) instead of looking for an Argo CD owner or the daily
    /// schedule's newest.
    #[arg(long, value_name = "NAME")]
    pub backup: Option<String>,
    /// Drop an interrupted recovery of this resource and start over.
    #[arg(long)]
    pub restart: bool,
    /// Confirm: objects are created on the cluster.
    #[arg(long)]
    pub yes: bool,
    /// How long each wait (the sync or Restore, the object) may take.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub within: u64,
}

/// The scenario's state across its steps.
struct ResourceRecovery<'a> {
    workspace: Workspace,
    session: Session,
    args: &'a ResourceArgs,
    target: Target,
    /// The record's start: names the Restores and marks the sync.
    started_at_unix: u64,
    source: Option<Source>,
    /// Step `cluster` or `choose` refused: nothing was touched, the
    /// record goes.
    refused_early: bool,
}

pub(super) async fn recover_resource(ctx: &Context, args: &ResourceArgs) -> anyhow::Result<Exit> {
    let cluster = args.cluster.as_str();
    let workspace = Workspace::recorded(ctx)?;
    if workspace.topology.control_plane(cluster).is_none() {
        return Err(coded(
            Exit::Usage,
            anyhow!("the topology has no cluster {cluster:?} with a control plane"),
        ));
    }
    let target = Target::parse(&args.resource, args.namespace.as_deref())
        .map_err(|e| coded(Exit::Usage, e))?;
    if !args.yes {
        return Err(coded(
            Exit::Usage,
            anyhow!("recovering {target} on {cluster} creates objects there; add --yes to confirm"),
        ));
    }
    let home = ctx.home.root();
    let record = Record::open(
        home,
        &target.scenario(),
        cluster,
        None,
        args.restart,
        SystemTime::now(),
        |_, _| true,
    )
    .map_err(|e| coded(Exit::Usage, e))?;
    if let (Some(recorded), Some(asked)) = (&record.source, &args.backup)
        && *recorded != Source::Backup(asked.clone()).to_string()
    {
        return Err(coded(
            Exit::Usage,
            ResourceError::OtherSource {
                target: target.to_string(),
                cluster: cluster.to_owned(),
                recorded: recorded.clone(),
                asked: Source::Backup(asked.clone()).to_string(),
            },
        ));
    }
    let file = record.file().to_owned();
    let session = Session::new(home, &workspace.resolved, Duration::from_secs(args.within))?;
    let mut scenario = ResourceRecovery {
        workspace,
        session,
        args,
        source: record.source.as_deref().and_then(Source::parse),
        started_at_unix: record.started_at_unix,
        target,
        refused_early: false,
    };
    let what = format!("{} on {cluster}", scenario.target);
    let outcome = runner::run(record, &what, &mut scenario).await;
    if scenario.refused_early {
        // Refused before anything was written: the next run starts afresh
        // (and its time is not measured from this one).
        let _ = std::fs::remove_file(&file);
    }
    outcome?;
    Ok(Exit::Ok)
}

/// A refusal exits with [`Exit::Precondition`].
fn refusal(e: ResourceError) -> anyhow::Error {
    if e.is_refusal() {
        coded(Exit::Precondition, e)
    } else {
        coded(Exit::Usage, e)
    }
}

#[async_trait::async_trait(?Send)]
impl Scenario for ResourceRecovery<'_> {
    fn steps(&self) -> &'static [(&'static str, &'static str)] {
        &STEPS
    }

    fn rto(&self) -> Duration {
        rules::RTO
    }

    async fn run(&mut self, id: &str) -> anyhow::Result<Option<String>> {
        let cluster = self.args.cluster.clone();
        match id {
            "cluster" => {
                let checked = self.session.check_identity(&cluster).await;
                self.refused_early = is_coded(&checked);
                checked?;
                note(format_args!(
                    "{} is {cluster}'s (kube-system/kubeadm-config)",
                    self.session.server(&cluster)?
                ))?;
                Ok(None)
            }
            "choose" => {
                let chosen = self.choose().await;
                self.refused_early = is_coded(&chosen);
                let source = chosen?;
                self.source = Some(source.clone());
                Ok(Some(source.to_string()))
            }
            "restore" => {
                match self.source.clone() {
                    Some(Source::Application(app)) => self.sync(&app).await?,
                    Some(Source::Backup(backup)) => self.restore(&backup).await?,
                    None => bail!("no source chosen (--restart chooses again)"),
                }
                Ok(None)
            }
            "check" => {
                let path = self.target.path();
                let object = self
                    .session
                    .wait(&cluster, "the object", |client| {
                        let path = path.clone();
                        async move {
                            Ok(match get(&client, &path).await? {
                                Some(o) => Done(o),
                                None => Wait("not there yet".into()),
                            })
                        }
                    })
                    .await?;
                match object["metadata"]["uid"].as_str() {
                    Some(uid) => note(format_args!("{} is there (uid {uid})", self.target))?,
                    None => note(format_args!("{} is there", self.target))?,
                }
                Ok(None)
            }
            other => bail!("unknown step {other}"),
        }
    }
}

/// Whether `result` is a refusal (or another final, coded error).
fn is_coded<T>(result: &anyhow::Result<T>) -> bool {
    result
        .as_ref()
        .is_err_and(|e| e.is::<crate::cli::CodedError>())
}

use Look::{Done, Wait};

impl ResourceRecovery<'_> {
    /// Step 2: the Application that owns the object, else a Backup.
    async fn choose(&mut self) -> anyhow::Result<Source> {
        let cluster = self.args.cluster.clone();
        let client = self.session.client(&cluster).await?;
        if get(&client, &self.target.path()).await?.is_some() {
            return Err(refusal(ResourceError::Present {
                target: self.target.to_string(),
                cluster,
            }));
        }
        if let Some(name) = self.args.backup.clone() {
            let path = format!("/apis/velero.io/v1/namespaces/{VELERO_NS}/backups/{name}");
            let bad = |why: String| {
                refusal(ResourceError::BadBackup {
                    name: name.clone(),
                    cluster: cluster.clone(),
                    why,
                })
            };
            let backup = get(&client, &path)
                .await?
                .ok_or_else(|| bad("does not exist".into()))?;
            usable(&backup).map_err(bad)?;
            note(format_args!("Velero backup {name}, as asked"))?;
            return Ok(Source::Backup(name));
        }
        match self.owner().await {
            Ok(Some(app)) => {
                note(format_args!(
                    "Argo CD's Application {ARGOCD_NS}/{app} on mgmt tracks it: GitOps restores it"
                ))?;
                return Ok(Source::Application(app));
            }
            Ok(None) => note("no Argo CD Application on mgmt tracks it")?,
            // mgmt's address reaching another cluster is a refusal, not a
            // reason to look elsewhere.
            Err(e) if e.is::<crate::cli::CodedError>() => return Err(e),
            // mgmt down pauses GitOps (spec §10): Velero still restores.
            Err(e) => note(format_args!(
                "mgmt's Argo CD did not answer ({e:#}); looking at Velero's backups"
            ))?,
        }
        let schedule = crate::addons::velero::daily_schedule_name();
        let selector = format!("velero.io/schedule-name={schedule}");
        let path = format!("/apis/velero.io/v1/namespaces/{VELERO_NS}/backups");
        let backups = list(&client, &path, &selector).await?;
        let none = |why: &str| {
            refusal(ResourceError::NoSource {
                target: self.target.to_string(),
                cluster: cluster.clone(),
                why: why.to_owned(),
                schedule: schedule.clone(),
            })
        };
        let Some(backups) = backups else {
            return Err(none("Velero is not installed on the cluster"));
        };
        let newest = newest_backup(&backups).ok_or_else(|| {
            none(&format!(
                "Velero has no Completed backup of its schedule {schedule}"
            ))
        })?;
        note(format_args!(
            "Velero's newest Completed backup of {schedule}: {newest}"
        ))?;
        Ok(Source::Backup(newest))
    }

    /// The Application on mgmt that tracks the target for this cluster.
    async fn owner(&mut self) -> anyhow::Result<Option<String>> {
        let cluster = self.args.cluster.clone();
        if cluster != "mgmt" {
            self.session.check_identity("mgmt").await?;
        }
        let mgmt = self.session.client("mgmt").await?;
        let path = format!("/apis/argoproj.io/v1alpha1/namespaces/{ARGOCD_NS}/applications");
        let Some(apps) = list(&mgmt, &path, "").await? else {
            return Ok(None); // no Argo CD on mgmt
        };
        let in_cluster = self
            .workspace
            .topology
            .cluster(&cluster)
            .is_some_and(|c| c.role == topology::ClusterRole::Mgmt);
        let destination = Destination {
            name: cluster.clone(),
            server: if in_cluster {
                crate::addons::argocd::clusters::IN_CLUSTER.to_owned()
            } else {
                self.session.server(&cluster)?
            },
        };
        Ok(rules::owning_application(&apps, &self.target, &destination))
    }

    /// Step 3, GitOps: request a sync of the one resource and wait for it.
    async fn sync(&mut self, app: &str) -> anyhow::Result<()> {
        let path = format!("/apis/argoproj.io/v1alpha1/namespaces/{ARGOCD_NS}/applications/{app}");
        let id = rules::sync_id(&self.target, self.started_at_unix);
        let patch = rules::sync_operation(&self.target, &id);
        let requested = std::cell::Cell::new(false);
        let (requested, path, id, patch) = (&requested, &path, &id, &patch);
        self.session
            .wait(
                "mgmt",
                &format!("Argo CD's sync through {app}"),
                |client| async move {
                    let application = get(&client, path).await?.ok_or_else(|| {
                        anyhow!("Application {ARGOCD_NS}/{app} is gone from mgmt")
                    })?;
                    Ok(match rules::sync_state(&application, id) {
                        // A failed sync of an earlier run is retried with a new request.
                        Sync::Request | Sync::Failed { .. } if !requested.get() => {
                            merge_patch(&client, path, patch).await?;
                            requested.set(true);
                            note(format_args!(
                                "requested a sync of just this resource on {app} (initiated by {})",
                                rules::INITIATED_BY
                            ))?;
                            Wait("requested".into())
                        }
                        Sync::Request => Wait("the requested operation is not there yet".into()),
                        Sync::Busy(why) | Sync::Running(why) => Wait(why),
                        Sync::Succeeded => Done(()),
                        Sync::Failed { phase, message } => {
                            return Err(coded(
                                Exit::Failure,
                                anyhow!(
                                    "Argo CD's sync through {app} ended {phase}: {message}; \
                             `argocd app get {app}` shows the resource's state; the same \
                             command again requests a new sync"
                                ),
                            ));
                        }
                    })
                },
            )
            .await?;
        note(format_args!("Argo CD's sync through {app} Succeeded"))
    }

    /// Step 3, Velero: the recovery's Restore (created unless an earlier
    /// run's is there and has not failed), waited for.
    async fn restore(&mut self, backup: &str) -> anyhow::Result<()> {
        let cluster = self.args.cluster.clone();
        let (target, started) = (&self.target, self.started_at_unix);
        let (kind, place) = (
            target.velero_resource(),
            target.namespace.as_deref().unwrap_or("the cluster"),
        );
        let (name, warnings) = self
            .session
            .restore(
                &cluster,
                |attempt| rules::restore_name(target, started, attempt),
                |name| rules::restore(name, backup, target),
                |name| {
                    format!(
                        "created Restore {VELERO_NS}/{name} of {backup}: every {kind} in \
                         {place} the backup has and the cluster lacks comes back (Velero \
                         selects no single object); existing ones are left alone"
                    )
                },
            )
            .await?;
        note(format_args!(
            "Restore {name} Completed (warnings: {warnings}; objects already there are kept \
             with a warning each)"
        ))
    }
}
