//! `hostctl recover etcd <cluster>`: etcd data damage (RTO 30 min), the
//! steps of [`crate::recover::etcd`] run by the shared [`super::runner`].

use super::refusal;
use super::runner::{self, Scenario};
use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::recover::etcd::{self, RTO, SCENARIO, STEPS};
use crate::recover::record::Record;
use crate::snapshots::{SnapshotInfo, SnapshotStore};
use crate::workspace::Workspace;
use anyhow::{Context as _, anyhow, bail};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, clap::Args)]
pub struct EtcdArgs {
    /// The cluster (see the topology).
    pub cluster: String,
    /// The snapshot's file name (or a unique prefix); default: the newest.
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// Fetch the snapshot from the object store's `etcd` bucket even when
    /// the host has one (it is also fetched when the host has none).
    #[arg(long)]
    pub from_store: bool,
    /// Drop an interrupted recovery of this cluster and start over.
    #[arg(long)]
    pub restart: bool,
    /// Confirm: the cluster's state is replaced by the snapshot's.
    #[arg(long)]
    pub yes: bool,
    /// The control-plane agent's address (`IP` uses port 7445).
    #[arg(long, value_name = "IP[:PORT]")]
    pub address: Option<String>,
    /// How long to wait for the API server after the restore.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub api_within: u64,
}

/// The snapshot chosen once step 1 has run or the record says it has.
pub(super) struct Chosen {
    pub(super) path: PathBuf,
    pub(super) info: SnapshotInfo,
}

/// The etcd scenario's state across its steps.
struct EtcdRecovery<'a> {
    ctx: &'a Context,
    workspace: Workspace,
    store: SnapshotStore,
    args: &'a EtcdArgs,
    chosen: Option<Chosen>,
}

pub(super) async fn recover_etcd(ctx: &Context, args: &EtcdArgs) -> anyhow::Result<Exit> {
    let cluster = args.cluster.as_str();
    let workspace = Workspace::recorded(ctx)?;
    if workspace.topology.control_plane(cluster).is_none() {
        return Err(coded(
            Exit::Usage,
            anyhow!("the topology has no cluster {cluster:?} with a control plane"),
        ));
    }
    if !args.yes {
        return Err(coded(
            Exit::Usage,
            anyhow!(
                "recovering {cluster}'s etcd replaces its state with a snapshot's; add --yes to confirm"
            ),
        ));
    }
    let home = ctx.home.root();
    let record = Record::open(
        home,
        SCENARIO,
        cluster,
        args.snapshot.as_deref(),
        args.restart,
        SystemTime::now(),
        etcd::names,
    )
    .map_err(|e| coded(Exit::Usage, e))?;
    let mut scenario = EtcdRecovery {
        ctx,
        workspace,
        store: SnapshotStore::new(home),
        args,
        chosen: None,
    };
    runner::run(record, cluster, &mut scenario).await?;
    Ok(Exit::Ok)
}

#[async_trait::async_trait(?Send)]
impl Scenario for EtcdRecovery<'_> {
    fn steps(&self) -> &'static [(&'static str, &'static str)] {
        &STEPS
    }

    fn rto(&self) -> Duration {
        RTO
    }

    async fn skipped(&mut self, _id: &str, record: &Record) -> anyhow::Result<()> {
        // Step 1's choice is on the record; later steps need its file.
        if self.chosen.is_none() {
            self.chosen = chosen_on_record(&self.store, &self.args.cluster, record)?;
        }
        Ok(())
    }

    async fn run(&mut self, id: &str) -> anyhow::Result<Option<String>> {
        let (ctx, workspace, store, args) = (self.ctx, &self.workspace, &self.store, self.args);
        let chosen = &mut self.chosen;
        let cluster = args.cluster.as_str();
        let name = args.snapshot.as_deref();
        match id {
            "choose" => {
                let c = choose(ctx, workspace, store, cluster, name, args.from_store).await?;
                let file = c.info.file.clone();
                *chosen = Some(c);
                Ok(Some(file))
            }
            "check" => {
                check(chosen.as_ref(), cluster)?;
                Ok(None)
            }
            "restore" => {
                let c = chosen
                    .as_ref()
                    .ok_or_else(|| anyhow!("no snapshot chosen"))?;
                crate::commands::etcd::restore_on_node(
                    ctx,
                    cluster,
                    &c.path,
                    &c.info,
                    args.address.as_deref(),
                    None,
                )
                .await?;
                Ok(None)
            }
            "api" => {
                wait_api(
                    ctx,
                    workspace,
                    cluster,
                    Duration::from_secs(args.api_within),
                )
                .await?;
                Ok(None)
            }
            other => bail!("unknown step {other}"),
        }
    }
}

/// Step "choose" of the scenarios that restore etcd: the host's named or
/// newest snapshot of `cluster`, else (or with `from_store`) one fetched
/// from the object store's `etcd` bucket and checked on the way.
pub(super) async fn choose(
    ctx: &Context,
    workspace: &Workspace,
    store: &SnapshotStore,
    cluster: &str,
    name: Option<&str>,
    from_store: bool,
) -> anyhow::Result<Chosen> {
    let local = if from_store {
        None
    } else {
        etcd::on_host(store, cluster, name)?
    };
    let (path, info) = match local {
        Some(found) => {
            crate::stdout::line(format_args!(
                "      the host's {}: {}",
                if name.is_some() { "named" } else { "newest" },
                found.0.display()
            ))?;
            found
        }
        None => {
            let storage = crate::commands::storage::real(ctx, &workspace.resolved);
            let client = storage.host_client()?;
            let fetched = etcd::fetch(&client, store, cluster, name)
                .await
                .map_err(refusal)?;
            crate::stdout::line(format_args!(
                "      fetched {} from the object store into {} (sha256 checked{})",
                fetched.object,
                fetched.path.display(),
                if fetched.already_on_host {
                    "; the host had the same file"
                } else {
                    ""
                }
            ))?;
            (fetched.path, fetched.info)
        }
    };
    Ok(Chosen { path, info })
}

/// Step "check": the chosen snapshot's own metadata names `cluster`.
pub(super) fn check(chosen: Option<&Chosen>, cluster: &str) -> anyhow::Result<()> {
    let c = chosen.ok_or_else(|| anyhow!("no snapshot chosen"))?;
    etcd::check_cluster(&c.path.with_extension("json"), &c.info, cluster).map_err(refusal)?;
    crate::stdout::line(format_args!(
        "      {} is {cluster}'s (revision {}, taken by {}, {} bytes)",
        c.info.file, c.info.revision, c.info.node, c.info.size
    ))?;
    Ok(())
}

/// The snapshot an interrupted recovery chose (`source` on its record),
/// for the steps after the choice.
pub(super) fn chosen_on_record(
    store: &SnapshotStore,
    cluster: &str,
    record: &Record,
) -> anyhow::Result<Option<Chosen>> {
    let Some(source) = &record.source else {
        return Ok(None);
    };
    let (path, info) = store.find(cluster, source).with_context(|| {
        format!("the snapshot {source} the interrupted recovery chose (--restart chooses again)")
    })?;
    Ok(Some(Chosen { path, info }))
}

/// One `/readyz` question to `cluster`'s API server with a freshly
/// minted admin client: `Ok(())` when it answers ready, else what went
/// wrong.
async fn api_ready(ctx: &Context, workspace: &Workspace, cluster: &str) -> Result<(), String> {
    use crate::cluster_api::client::admin_client;
    use crate::cluster_api::health::{STATUS_TIMEOUT, api_health};
    let pki = certs::Pki::open(ctx.home.root()).map_err(|e| format!("the home's PKI: {e}"))?;
    match admin_client(&pki, &workspace.resolved, cluster, STATUS_TIMEOUT).await {
        Ok((client, _)) => {
            let health = api_health(&client).await;
            if health.ok {
                Ok(())
            } else {
                Err(health.error.unwrap_or_default())
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Whether `cluster`'s API server answers ready right now.
pub(super) async fn api_answers(ctx: &Context, workspace: &Workspace, cluster: &str) -> bool {
    api_ready(ctx, workspace, cluster).await.is_ok()
}

/// Polls the API server's `/readyz` (which includes etcd) until it
/// answers, or fails after `within` with the last answer.
pub(super) async fn wait_api(
    ctx: &Context,
    workspace: &Workspace,
    cluster: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let last = match api_ready(ctx, workspace, cluster).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            bail!(
                "{cluster}'s API server did not answer /readyz within {}s: {last}",
                within.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
