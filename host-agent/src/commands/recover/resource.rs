//! `hostctl recover resource <cluster> KIND/NAME`: a deleted resource
//! (spec §10.3, RTO 5 min), the steps of [`crate::recover::resource`] run
//! by the shared [`super::runner`] against the cluster's API server and
//! mgmt's (where Argo CD's Applications are). Every wait is polled up to
//! `--within`; a rerun continues with the recorded source and finds the
//! Restore or the sync an earlier run started instead of starting another.

use super::runner::{self, Scenario};
use crate::cli::{Context, coded};
use crate::cluster_api::client::admin_client;
use crate::cluster_api::kubeconfig::server_url;
use crate::exit::Exit;
use crate::recover::record::Record;
use crate::recover::resource::{
    self as rules, Destination, ResourceError, Restore, STEPS, Source, Sync, Target,
};
use crate::workspace::Workspace;
use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// Each request's own limit; the waits around them have `--within`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_secs(2);
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
    pki: certs::Pki,
    args: &'a ResourceArgs,
    target: Target,
    /// The record's start: names the Restores and marks the sync.
    started_at_unix: u64,
    source: Option<Source>,
    clients: BTreeMap<String, kube::Client>,
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
    let mut scenario = ResourceRecovery {
        workspace,
        pki: certs::Pki::open(home).context("the home's PKI")?,
        args,
        source: record.source.as_deref().and_then(Source::parse),
        started_at_unix: record.started_at_unix,
        target,
        clients: BTreeMap::new(),
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

fn note(text: impl std::fmt::Display) -> anyhow::Result<()> {
    crate::stdout::line(format_args!("      {text}"))
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
                let checked = self.check_identity(&cluster).await;
                self.refused_early = is_coded(&checked);
                checked?;
                note(format_args!(
                    "{} is {cluster}'s (kube-system/kubeadm-config)",
                    self.server(&cluster)?
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

/// One look of a wait: done with a value, or not yet (and why).
enum Look<T> {
    Done(T),
    Wait(String),
}
use Look::{Done, Wait};

impl ResourceRecovery<'_> {
    fn server(&self, cluster: &str) -> anyhow::Result<String> {
        Ok(server_url(&self.workspace.resolved, cluster)?)
    }

    async fn client(&mut self, cluster: &str) -> anyhow::Result<kube::Client> {
        if let Some(c) = self.clients.get(cluster) {
            return Ok(c.clone());
        }
        let (client, _) = admin_client(
            &self.pki,
            &self.workspace.resolved,
            cluster,
            REQUEST_TIMEOUT,
        )
        .await
        .with_context(|| format!("{cluster}'s admin client"))?;
        self.clients.insert(cluster.to_owned(), client.clone());
        Ok(client)
    }

    /// Refuses an API server that is not `cluster`'s (a refusal, coded) or
    /// whose identity cannot be read; fails plainly when it does not answer.
    async fn check_identity(&mut self, cluster: &str) -> anyhow::Result<()> {
        let server = self.server(cluster)?;
        let client = self.client(cluster).await?;
        let path = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config";
        let unknown = |reason: String| {
            refusal(ResourceError::UnknownCluster {
                server: server.clone(),
                reason,
            })
        };
        let config = get(&client, path)
            .await
            .with_context(|| format!("asking {server} which cluster it is"))?
            .ok_or_else(|| unknown("kube-system/kubeadm-config does not exist".into()))?;
        let found = rules::cluster_name(&config).map_err(unknown)?;
        if found != cluster {
            return Err(refusal(ResourceError::WrongCluster {
                server,
                cluster: cluster.to_owned(),
                found,
            }));
        }
        Ok(())
    }

    /// Step 2: the Application that owns the object, else a Backup.
    async fn choose(&mut self) -> anyhow::Result<Source> {
        let cluster = self.args.cluster.clone();
        let client = self.client(&cluster).await?;
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
            rules::usable(&backup).map_err(bad)?;
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
        let newest = rules::newest_backup(&backups).ok_or_else(|| {
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
            self.check_identity("mgmt").await?;
        }
        let mgmt = self.client("mgmt").await?;
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
                self.server(&cluster)?
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
        self.wait(
            "mgmt",
            &format!("Argo CD's sync through {app}"),
            |client| async move {
                let application = get(&client, path)
                    .await?
                    .ok_or_else(|| anyhow!("Application {ARGOCD_NS}/{app} is gone from mgmt"))?;
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
        let client = self.client(&cluster).await?;
        let collection = format!("/apis/velero.io/v1/namespaces/{VELERO_NS}/restores");
        let mut attempt = 1;
        let name = loop {
            let name = rules::restore_name(&self.target, self.started_at_unix, attempt);
            match get(&client, &format!("{collection}/{name}")).await? {
                None => {
                    let body = rules::restore(&name, backup, &self.target);
                    create(&client, &collection, &body).await?;
                    let (kind, place) = (
                        self.target.velero_resource(),
                        self.target.namespace.as_deref().unwrap_or("the cluster"),
                    );
                    note(format_args!(
                        "created Restore {VELERO_NS}/{name} of {backup}: every {kind} in \
                         {place} the backup has and the cluster lacks comes back (Velero \
                         selects no single object); existing ones are left alone"
                    ))?;
                    break name;
                }
                Some(r) if matches!(rules::restore_state(&r), Restore::Failed(_)) => {
                    note(format_args!(
                        "Restore {name} of an earlier run failed; creating a new one"
                    ))?;
                    attempt += 1;
                }
                Some(_) => {
                    note(format_args!(
                        "waiting on Restore {VELERO_NS}/{name}, created by an earlier run"
                    ))?;
                    break name;
                }
            }
        };
        let path = format!("{collection}/{name}");
        let path = &path;
        let warnings = self
            .wait(&cluster, &format!("Restore {name}"), |client| async move {
                let restore = get(&client, path)
                    .await?
                    .ok_or_else(|| anyhow!("Restore {path} is gone"))?;
                match rules::restore_state(&restore) {
                    Restore::Completed { warnings } => Ok(Done(warnings)),
                    Restore::Failed(why) => Err(coded(Exit::Failure, anyhow!(why))),
                    Restore::Running(phase) => Ok(Wait(format!("phase {phase}"))),
                }
            })
            .await?;
        note(format_args!(
            "Restore {name} Completed (warnings: {warnings}; objects already there are kept \
             with a warning each)"
        ))
    }

    /// Polls `look` on `cluster`'s client every [`POLL`] until it is done
    /// or `--within` has passed. A request that fails (the API server away
    /// for a moment) is another look later; an error `look` returns coded
    /// is final.
    async fn wait<T, F, Fut>(&mut self, cluster: &str, what: &str, look: F) -> anyhow::Result<T>
    where
        F: Fn(kube::Client) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Look<T>>>,
    {
        let within = Duration::from_secs(self.args.within);
        let deadline = Instant::now() + within;
        let client = self.client(cluster).await?;
        loop {
            let last = match look(client.clone()).await {
                Ok(Done(value)) => return Ok(value),
                Ok(Wait(why)) => why,
                Err(e) if e.is::<crate::cli::CodedError>() => return Err(e),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "{what} did not finish within {}s (last: {last}); the same command \
                     again continues waiting",
                    within.as_secs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// `GET path`; `None` on 404.
async fn get(client: &kube::Client, path: &str) -> anyhow::Result<Option<Value>> {
    let request = http::Request::get(path).body(Vec::new())?;
    match client.request::<Value>(request).await {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(anyhow!("GET {path}: {e}")),
    }
}

/// The items of the collection at `path` matching label `selector`
/// (`""` for all); `None` when the kind is not served (404).
async fn list(
    client: &kube::Client,
    path: &str,
    selector: &str,
) -> anyhow::Result<Option<Vec<Value>>> {
    let query = if selector.is_empty() {
        path.to_owned()
    } else {
        format!(
            "{path}?labelSelector={}",
            selector.replace('/', "%2F").replace('=', "%3D")
        )
    };
    Ok(get(client, &query)
        .await?
        .map(|list| list["items"].as_array().cloned().unwrap_or_default()))
}

/// `POST` of `body` to the collection at `path`.
async fn create(client: &kube::Client, path: &str, body: &Value) -> anyhow::Result<Value> {
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body)?)?;
    client
        .request::<Value>(request)
        .await
        .map_err(|e| anyhow!("creating {path}/{}: {e}", body["metadata"]["name"]))
}

/// A JSON merge patch (RFC 7386) of the object at `path`.
async fn merge_patch(client: &kube::Client, path: &str, patch: &Value) -> anyhow::Result<Value> {
    let request = http::Request::patch(path)
        .header("content-type", "application/merge-patch+json")
        .body(serde_json::to_vec(patch)?)?;
    client
        .request::<Value>(request)
        .await
        .map_err(|e| anyhow!("PATCH {path}: {e}"))
}
