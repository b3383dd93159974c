//! `hostctl recover cluster <cluster>`: a lost cluster (RTO 2 h), the steps
//! of [`crate::recover::cluster`] run by the shared [`super::runner`]. The
//! cluster is rebuilt by `up`'s own graph (`up --only <cluster>`), which
//! keeps its Velero location read-only while this recovery has not
//! restored; the restore itself is a Velero Restore of every namespace of
//! the chosen backup, waited for through the cluster's API.

use super::kube::{Look, Session, get, list, note};
use super::node::{UpTiming, remove_machine, run_up};
use super::runner::{self, Scenario};
use crate::addons::velero::{self, ExistingResourcePolicy};
use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::recover::cluster::{MGMT_STEPS, RTO, SCENARIO, STEPS};
use crate::recover::record::Record;
use crate::recover::velero::{newest_backup, usable};
use crate::workspace::Workspace;
use anyhow::{Context as _, anyhow, bail};
use std::time::{Duration, SystemTime};

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The lost cluster (see the topology).
    pub cluster: String,
    /// The Velero backup to restore (as `velero backup get` lists it);
    /// default: the newest Completed one of the daily schedule.
    #[arg(long, value_name = "NAME")]
    pub backup: Option<String>,
    /// Drop an interrupted recovery of this cluster and start over.
    #[arg(long)]
    pub restart: bool,
    /// Confirm: what is left of the cluster's machines is deleted and the
    /// cluster is rebuilt from its backup.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub timing: UpTiming,
    /// How long each wait on Velero (the backups' sync, the Restore) and
    /// on the API server may take.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub within: u64,
}

/// The cluster scenario's state across its steps.
struct ClusterRecovery<'a> {
    /// mgmt: Vault first.
    mgmt: bool,
    ctx: &'a Context,
    workspace: &'a Workspace,
    args: &'a ClusterArgs,
    session: Session,
    started_at_unix: u64,
    backup: Option<String>,
}

pub(super) async fn recover_cluster(ctx: &Context, args: &ClusterArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::recorded(ctx)?;
    let cluster = args.cluster.as_str();
    let Some(spec) = workspace.topology.cluster(cluster) else {
        return Err(coded(
            Exit::Usage,
            anyhow!("the topology has no cluster {cluster:?}"),
        ));
    };
    if !workspace.topology.managed_backups() {
        return Err(coded(
            Exit::Usage,
            anyhow!(
                "the topology has no `backups: {{ managed: true }}`, so {cluster} has no \
                 Velero backups to restore from; re-provision it with `hostctl up --only \
                 {cluster}`"
            ),
        ));
    }
    if !args.yes {
        return Err(coded(
            Exit::Usage,
            anyhow!(
                "recovering {cluster} deletes what is left of its machines and rebuilds it from \
                 a Velero backup; add --yes to confirm"
            ),
        ));
    }
    let record = Record::open(
        ctx.home.root(),
        SCENARIO,
        cluster,
        args.backup.as_deref(),
        args.restart,
        SystemTime::now(),
        |recorded, asked| recorded == asked,
    )
    .map_err(|e| coded(Exit::Usage, e))?;
    let mgmt = spec.role == topology::ClusterRole::Mgmt;
    let mut scenario = ClusterRecovery {
        mgmt,
        ctx,
        workspace: &workspace,
        args,
        session: Session::new(
            ctx.home.root(),
            &workspace.resolved,
            Duration::from_secs(args.within),
        )?,
        started_at_unix: record.started_at_unix,
        backup: record.source.clone(),
    };
    runner::run(record, cluster, &mut scenario).await?;
    Ok(Exit::Ok)
}

#[async_trait::async_trait(?Send)]
impl Scenario for ClusterRecovery<'_> {
    fn steps(&self) -> &'static [(&'static str, &'static str)] {
        if self.mgmt { &MGMT_STEPS } else { &STEPS }
    }

    fn rto(&self) -> Duration {
        RTO
    }

    async fn run(&mut self, id: &str) -> anyhow::Result<Option<String>> {
        let (ctx, args, cluster) = (self.ctx, self.args, self.args.cluster.as_str());
        let timing = &args.timing;
        match id {
            "lost" => {
                if super::kube::api_answers(ctx, self.workspace, cluster).await {
                    return Err(coded(
                        Exit::Precondition,
                        anyhow!(
                            "{cluster}'s API server answers, so the cluster is not lost and \
                             nothing was touched; for a deleted resource run `hostctl recover \
                             resource {cluster} KIND/NAME`, for a lost control plane `hostctl \
                             recover node`"
                        ),
                    ));
                }
                Ok(None)
            }
            "machines" => {
                for node in self.workspace.topology.nodes_of(cluster) {
                    remove_machine(ctx, &node.name).await?;
                }
                Ok(None)
            }
            "provision" => {
                run_up(ctx, cluster, timing, false).await?;
                Ok(None)
            }
            "vault" => {
                self.vault_first().await?;
                Ok(None)
            }
            "backup" => {
                let backup = self.choose().await?;
                self.backup = Some(backup.clone());
                Ok(Some(backup))
            }
            "restore" => {
                let backup = self
                    .backup
                    .clone()
                    .ok_or_else(|| anyhow!("no backup chosen"))?;
                self.restore(&backup).await?;
                Ok(None)
            }
            "hand-back" => {
                // The record says restored now: `up` renders the location
                // read-write again and Argo CD's Applications resume on it.
                run_up(ctx, cluster, timing, false).await?;
                Ok(None)
            }
            "api" => {
                let within = Duration::from_secs(args.within);
                super::kube::wait_api(ctx, self.workspace, cluster, within).await?;
                Ok(None)
            }
            other => bail!("unknown step {other}"),
        }
    }
}

impl ClusterRecovery<'_> {
    /// mgmt's Vault: the host's newest raft snapshot into the rebuilt
    /// Vault, unsealed with the snapshot's key ([`crate::recover::vault`]).
    async fn vault_first(&self) -> anyhow::Result<()> {
        let home = self.ctx.home.root();
        let resolved = &self.workspace.resolved;
        let pki = certs::Pki::open(home).context("the home's PKI")?;
        let target = crate::secrets::VaultTarget::from_env(resolved, &pki)?;
        let keys = vault::KeyDir::new(crate::secrets::key_dir(home));
        let s3 = crate::commands::storage::real(self.ctx, resolved).host_client()?;
        let restored = crate::recover::vault::restore_into_rebuilt(
            &target.client()?,
            &keys,
            &s3,
            home,
            None,
            vault::WaitPolicy::default(),
        )
        .await?;
        note(format_args!(
            "restored {} into the rebuilt Vault and unsealed it with the key set aside at {}; \
             that key and admin token are current again",
            restored.snapshot, restored.key_stamp
        ))
    }

    /// The named backup, or the newest Completed one of the daily
    /// schedule, once Velero has synced it from the cluster's bucket
    /// (`backupSyncPeriod`, a minute by default): waited for.
    async fn choose(&mut self) -> anyhow::Result<String> {
        let cluster = self.args.cluster.clone();
        self.session.check_identity(&cluster).await?;
        let collection = format!(
            "/apis/velero.io/v1/namespaces/{}/backups",
            velero::NAMESPACE
        );
        let schedule = velero::daily_schedule_name();
        let selector = format!("velero.io/schedule-name={schedule}");
        let named = self.args.backup.clone();
        let (collection, selector, named) = (&collection, &selector, &named);
        let chosen = self
            .session
            .wait(
                &cluster,
                "Velero's sync of the backups from the store",
                |client| async move {
                    if let Some(name) = named {
                        return Ok(match get(&client, &format!("{collection}/{name}")).await? {
                            None => Look::Wait(format!("no backup {name} synced yet")),
                            Some(b) => match usable(&b) {
                                Ok(()) => Look::Done(name.clone()),
                                Err(why) => {
                                    return Err(coded(
                                        Exit::Precondition,
                                        anyhow!("backup {name} {why}"),
                                    ));
                                }
                            },
                        });
                    }
                    Ok(match list(&client, collection, selector).await? {
                        None => Look::Wait("Velero's API is not served yet".into()),
                        Some(backups) => match newest_backup(&backups) {
                            Some(newest) => Look::Done(newest),
                            None => Look::Wait(format!(
                                "{} backups of the schedule synced, none Completed",
                                backups.len()
                            )),
                        },
                    })
                },
            )
            .await?;
        note(format_args!(
            "Velero backup {chosen} (from {cluster}'s bucket on the host's store)"
        ))?;
        Ok(chosen)
    }

    /// The recovery's Restore of every namespace of `backup` (created
    /// unless an earlier run's is there and has not failed), waited for.
    async fn restore(&mut self, backup: &str) -> anyhow::Result<()> {
        let cluster = self.args.cluster.clone();
        let started = self.started_at_unix;
        let (name, warnings) = self
            .session
            .restore(
                &cluster,
                |attempt| format!("hostctl-cluster-{started}-{attempt}"),
                |name| {
                    velero::restore_from_backup(name, backup, &["*"], ExistingResourcePolicy::None)
                },
                |name| {
                    format!(
                        "created Restore {}/{name} of {backup}: every namespace it holds",
                        velero::NAMESPACE
                    )
                },
            )
            .await?;
        note(format_args!(
            "Restore {name} Completed (warnings: {warnings})"
        ))
    }
}
