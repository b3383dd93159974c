//! `hostctl recover etcd <cluster>`: etcd data damage (RTO 30 min), the
//! steps of [`crate::recover::etcd`] run by the shared [`super::runner`].

use super::runner::{self, Scenario};
use super::snapshot::{SnapshotChoice, SnapshotSource};
use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::recover::etcd::{self, RTO, SCENARIO, STEPS};
use crate::recover::record::Record;
use crate::workspace::Workspace;
use anyhow::{anyhow, bail};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, clap::Args)]
pub struct EtcdArgs {
    /// The cluster (see the topology).
    pub cluster: String,
    #[command(flatten)]
    pub snapshot: SnapshotChoice,
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

/// The etcd scenario's state across its steps.
struct EtcdRecovery<'a> {
    ctx: &'a Context,
    workspace: Workspace,
    args: &'a EtcdArgs,
    source: SnapshotSource,
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
        args.snapshot.snapshot.as_deref(),
        args.restart,
        SystemTime::now(),
        etcd::names,
    )
    .map_err(|e| coded(Exit::Usage, e))?;
    let mut scenario = EtcdRecovery {
        ctx,
        workspace,
        args,
        source: SnapshotSource::new(home, cluster, &args.snapshot),
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
        self.source.resume(record)
    }

    async fn run(&mut self, id: &str) -> anyhow::Result<Option<String>> {
        let (ctx, args) = (self.ctx, self.args);
        let cluster = args.cluster.as_str();
        match id {
            "choose" => Ok(Some(self.source.choose(ctx, &self.workspace).await?)),
            "check" => {
                self.source.check()?;
                Ok(None)
            }
            "restore" => {
                let c = self.source.chosen()?;
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
                    &self.workspace,
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
