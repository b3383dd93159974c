//! `hostctl recover node <control-plane>`: a lost control-plane node (RTO
//! 1 h), the steps of [`crate::recover::node`] run by the shared
//! [`super::runner`]. The machine and the cluster are rebuilt by `up`'s
//! own graph (`up --only <cluster>`, nodes first), so a recovered node is
//! made exactly as `up` makes one; the recovery adds the choice of the
//! snapshot, the refusal to touch a node that is not lost, and the etcd
//! restore between the machine and kubeadm.

use super::kube::wait_api;
use super::runner::{self, Scenario};
use super::snapshot::{SnapshotChoice, SnapshotSource};
use crate::cli::{Context, coded};
use crate::commands::up;
use crate::exit::Exit;
use crate::recover::etcd::names;
use crate::recover::node::{RTO, SCENARIO, STEPS, seed};
use crate::recover::record::Record;
use crate::workspace::Workspace;
use anyhow::{Context as _, anyhow, bail};
use std::time::{Duration, SystemTime};

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The lost control-plane node (see the topology).
    pub node: String,
    #[command(flatten)]
    pub snapshot: SnapshotChoice,
    /// Drop an interrupted recovery of this node's cluster and start over.
    #[arg(long)]
    pub restart: bool,
    /// Confirm: what is left of the machine is deleted and the cluster's
    /// state becomes the snapshot's.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub timing: UpTiming,
    /// How long to wait for the API server at the end.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub api_within: u64,
}

/// The node scenario's state across its steps.
struct NodeRecovery<'a> {
    ctx: &'a Context,
    workspace: Workspace,
    args: &'a NodeArgs,
    cluster: String,
    source: SnapshotSource,
}

pub(super) async fn recover_node(ctx: &Context, args: &NodeArgs) -> anyhow::Result<Exit> {
    let workspace = Workspace::recorded(ctx)?;
    let node = args.node.as_str();
    let cluster = match workspace.topology.node(node) {
        Some(n)
            if workspace
                .topology
                .control_plane(&n.cluster)
                .map(|c| &c.name)
                == Some(&n.name) =>
        {
            n.cluster.clone()
        }
        Some(n) => {
            return Err(coded(
                Exit::Usage,
                anyhow!(
                    "{node} is a worker of {}, not a control plane: `hostctl up` recreates a \
                     lost worker and it joins again",
                    n.cluster
                ),
            ));
        }
        None => {
            return Err(coded(
                Exit::Usage,
                anyhow!("the topology has no node {node:?}"),
            ));
        }
    };
    if !args.yes {
        return Err(coded(
            Exit::Usage,
            anyhow!(
                "recovering {node} deletes what is left of its machine and restores {cluster}'s \
                 etcd from a snapshot; add --yes to confirm"
            ),
        ));
    }
    let home = ctx.home.root();
    let record = Record::open(
        home,
        SCENARIO,
        &cluster,
        args.snapshot.snapshot.as_deref(),
        args.restart,
        SystemTime::now(),
        names,
    )
    .map_err(|e| coded(Exit::Usage, e))?;
    let mut scenario = NodeRecovery {
        ctx,
        workspace,
        args,
        source: SnapshotSource::new(home, &cluster, &args.snapshot),
        cluster,
    };
    runner::run(record, node, &mut scenario).await?;
    Ok(Exit::Ok)
}

#[async_trait::async_trait(?Send)]
impl Scenario for NodeRecovery<'_> {
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
        let (ctx, args, cluster) = (self.ctx, self.args, self.cluster.as_str());
        match id {
            "choose" => Ok(Some(self.source.choose(ctx, &self.workspace).await?)),
            "check" => {
                self.source.check()?;
                Ok(None)
            }
            "lost" => {
                self.remove_remains().await?;
                Ok(None)
            }
            "machine" => {
                self.up(true).await?;
                Ok(None)
            }
            "seed" => {
                let c = self.source.chosen()?;
                let address = self
                    .workspace
                    .resolved
                    .node_ip(&args.node)
                    .ok_or_else(|| anyhow!("{} has no address in the topology", args.node))?;
                crate::commands::etcd::restore_on_node(
                    ctx,
                    cluster,
                    &c.path,
                    &c.info,
                    None,
                    Some(seed(&args.node, address)),
                )
                .await?;
                Ok(None)
            }
            "control-plane" => {
                self.up(false).await?;
                Ok(None)
            }
            "api" => {
                let within = Duration::from_secs(args.api_within);
                wait_api(ctx, &self.workspace, cluster, within).await?;
                Ok(None)
            }
            other => bail!("unknown step {other}"),
        }
    }
}

impl NodeRecovery<'_> {
    /// Refuses a node that is not lost (its API server answers: that is
    /// `recover etcd`'s case), then deletes what is left of the machine.
    async fn remove_remains(&self) -> anyhow::Result<()> {
        let (node, cluster) = (self.args.node.as_str(), self.cluster.as_str());
        if super::kube::api_answers(self.ctx, &self.workspace, cluster).await {
            return Err(coded(
                Exit::Precondition,
                anyhow!(
                    "{cluster}'s API server answers, so {node} is not lost and nothing was \
                     touched; for damaged etcd data run `hostctl recover etcd {cluster}`"
                ),
            ));
        }
        remove_machine(self.ctx, node).await
    }

    async fn up(&self, nodes_only: bool) -> anyhow::Result<()> {
        run_up(self.ctx, &self.cluster, &self.args.timing, nodes_only).await
    }
}

/// Deletes what the provider still has of `node`'s machine (a stopped or
/// dead VM, its disk), so `up` launches it afresh; nothing left is fine.
pub(super) async fn remove_machine(ctx: &Context, node: &str) -> anyhow::Result<()> {
    let provider =
        crate::provider::for_home(ctx.home.root()).map_err(|e| coded(Exit::Precondition, e))?;
    match provider.info(node).await.map_err(up::provider_exit)? {
        Some(vm) => {
            crate::stdout::line(format_args!(
                "      {node}'s machine is {:?}: deleting it and its disk",
                vm.state
            ))?;
            provider
                .delete(node, true)
                .await
                .map_err(up::provider_exit)?;
        }
        None => crate::stdout::line(format_args!("      {node} has no machine left"))?,
    }
    Ok(())
}

/// `up`'s timing flags, passed through by the recoveries that run it.
#[derive(Debug, Clone, clap::Args)]
pub struct UpTiming {
    /// Seconds between node health reports (as `up`).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub report_interval: u32,
    /// Seconds each new machine gets to enrol and report (as `up`).
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub timeout: u64,
    /// Seconds the cluster's nodes get to become Ready (as `up`).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub ready_timeout: u64,
}

/// `up --only <cluster>` (with `--nodes-only` if asked) in process;
/// anything but success stops the recovery at its step.
pub(super) async fn run_up(
    ctx: &Context,
    cluster: &str,
    timing: &UpTiming,
    nodes_only: bool,
) -> anyhow::Result<()> {
    let mut argv = vec![
        "--only".to_owned(),
        cluster.to_owned(),
        "--report-interval".to_owned(),
        timing.report_interval.to_string(),
        "--timeout".to_owned(),
        timing.timeout.to_string(),
        "--ready-timeout".to_owned(),
        timing.ready_timeout.to_string(),
    ];
    if nodes_only {
        argv.push("--nodes-only".to_owned());
    }
    let up_args = up::Args::parse(&argv).context("up's arguments")?;
    match up::up(ctx, up_args).await? {
        Exit::Ok => Ok(()),
        other => bail!(
            "`hostctl up {}` ended with {other:?}; its output above says which step failed",
            argv.join(" ")
        ),
    }
}
