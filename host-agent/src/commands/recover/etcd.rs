//! `hostctl recover etcd <cluster>`: etcd data damage (RTO 30 min), the
//! steps of [`crate::recover::etcd`] run by the shared [`super::runner`].

use super::kube::wait_api;
use super::runner::{self, Scenario};
use super::snapshot::{SnapshotChoice, SnapshotSource};
use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::recover::etcd::{self, RTO, SCENARIO, STEPS};
use crate::recover::record::Record;
use crate::workspace::Workspace;
use anyhow::{anyhow, bail};
use std::time::{Duration, SystemTime};

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
