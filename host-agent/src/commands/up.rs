//! `hostctl up`: reconcile the topology into running, enrolled node agents.
//!
//! validate topology → ensure PKI → node network → daemon → per node in
//! parallel (skip what already runs and reported; else token → config →
//! `provider.launch`) → wait until every agent is connected and fresh.
//! The provisioning issue grows this into the full graph (prerequisites,
//! kubeadm, CNI); each step here is already safe to repeat.

use crate::agent_plane::DEFAULT_TOKEN_TTL;
use crate::cli::{Context, coded};
use crate::daemon::{self, ControlClient};
use crate::exit::Exit;
use crate::node_config::{NodeAgentConfig, NodeConfigInput};
use crate::output::{self, OutputFormat, Table};
use crate::provider::local::LocalOptions;
use crate::provider::{
    self, LaunchSpec, NodeNetwork, Provider, ProviderError, ProviderKind, VmState,
};
use crate::topology_source::{self, TopologySource};
use anyhow::Context as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use topology::{NodeRole, Resolved, Topology};

mod wait;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Machine provider; defaults to the one recorded by the last `up`.
    #[arg(long, value_enum)]
    provider: Option<ProviderKind>,
    /// Bring up only the nodes of this cluster.
    #[arg(long, value_name = "CLUSTER")]
    only: Option<String>,
    /// Seconds between node health reports.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    report_interval: u32,
    /// Seconds to wait for every node to enrol and report.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    timeout: u64,
    /// Reports a node keeps while the host is unreachable.
    #[arg(long, value_name = "N", default_value_t = 1000, hide = true)]
    buffer_capacity: u32,
    /// The node-agent binary (local provider); default: beside `hostctl`.
    #[arg(long, value_name = "PATH", env = provider::local::NODE_AGENT_ENV)]
    node_agent_bin: Option<PathBuf>,
}

/// What `up` did to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Already running and reporting: left alone.
    Unchanged,
    /// Existed but was stopped: started.
    Started,
    /// Existed but never reported: recreated with a fresh token.
    Recreated,
    /// Created.
    Launched,
}

/// One row of the summary.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeOutcome {
    pub node: String,
    pub cluster: String,
    pub address: std::net::Ipv4Addr,
    pub action: Action,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<Exit> {
    crate::cli::block_on(up(ctx, args))?
}

async fn up(ctx: &Context, args: Args) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let home = ctx.home.root();
    let progress = Progress(ctx.output);
    let kind = match args.provider {
        Some(kind) => kind,
        None => provider::recorded(home)?.ok_or_else(|| {
            coded(
                Exit::Usage,
                anyhow::anyhow!("choose a provider: hostctl up --provider local"),
            )
        })?,
    };
    let local = LocalOptions {
        node_agent: args.node_agent_bin.clone(),
        supervisor_exe: None,
    };
    let provider: Arc<dyn Provider> =
        Arc::from(provider::open(kind, home, local).map_err(|e| coded(Exit::Precondition, e))?);

    let source = TopologySource::locate(ctx.topology.as_deref());
    let topology = topology_source::load_checked(ctx.topology.as_deref())?;
    let resolved = resolve(&topology, provider.as_ref()).await?;
    let nodes = selected_nodes(&resolved, args.only.as_deref())?;
    // The network first: it is the first step that needs privileges, so a
    // missing precondition (root, `ip`) is reported before anything is written.
    let network = NodeNetwork {
        subnet: resolved.subnet(),
        host_address: resolved.host_agent_address(),
    };
    provider.prepare(&network).await.map_err(provider_exit)?;
    let ca_pem = crate::pki::ensure_pki(ctx, &topology)?
        .agent_ca_pem()
        .to_owned();
    provider::record_choice(home, kind)?;
    progress.line(format!(
        "network {} ready (host {}) via the {} provider",
        network.subnet,
        network.host_address,
        provider.name()
    ));

    let topology_file = match &source {
        TopologySource::File(path) => Some(path.as_path()),
        TopologySource::BuiltIn => None,
    };
    let client = daemon::ensure_running(ctx, topology_file)
        .await
        .context("starting the daemon")?;
    progress.line(format!(
        "daemon answering on {}",
        crate::daemon::config::socket_path(home).display()
    ));

    let plan = Arc::new(Plan {
        resolved,
        ca_pem,
        report_interval: args.report_interval,
        buffer_capacity: args.buffer_capacity,
    });
    let reported = wait::reported_nodes(&mut client.clone()).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for node in nodes {
        let (plan, provider, client) = (plan.clone(), provider.clone(), client.clone());
        let already = reported.contains(&node);
        tasks.spawn(async move {
            let result = reconcile(&plan, provider.as_ref(), client, &node, already).await;
            (node, result)
        });
    }
    let mut outcomes = BTreeMap::new();
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (node, result) = joined.context("a node task panicked")?;
        match result {
            Ok(outcome) => {
                progress.line(format!(
                    "{node}: {} ({})",
                    describe(outcome.0.action),
                    outcome.0.address
                ));
                outcomes.insert(node, outcome);
            }
            Err(e) => {
                progress.line(format!("{node}: failed: {e:#}"));
                failures.push(format!("{node}: {e:#}"));
            }
        }
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "{} node(s) could not be launched:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }

    let since: BTreeMap<String, Option<SystemTime>> =
        outcomes.iter().map(|(n, (_, t))| (n.clone(), *t)).collect();
    let logs: BTreeMap<String, PathBuf> = since
        .keys()
        .map(|n| {
            (
                n.clone(),
                provider.agent_layout(n).root.join("var/log/hostctl"),
            )
        })
        .collect();
    wait::until_reporting(
        client,
        &since,
        &logs,
        Duration::from_secs(args.timeout),
        |node| {
            // Nodes left alone were already reporting; say nothing twice.
            if since.get(node).copied().flatten().is_some() {
                progress.line(format!("{node}: enrolled and reporting"));
            }
        },
    )
    .await?;

    let rows: Vec<NodeOutcome> = outcomes.into_values().map(|(o, _)| o).collect();
    let summary = format!(
        "{} node(s) up in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    let text = output::render(ctx.output, &rows, || summary_table(&rows))?;
    print!("{text}");
    if ctx.output == OutputFormat::Table {
        println!("{summary}");
    }
    Ok(Exit::Ok)
}

/// Everything every node's task reads.
struct Plan {
    resolved: Resolved,
    ca_pem: String,
    report_interval: u32,
    buffer_capacity: u32,
}

/// Brings one node to "running with an agent that will report"; returns
/// what was done and, when a report must be awaited, since when.
async fn reconcile(
    plan: &Plan,
    provider: &dyn Provider,
    mut client: ControlClient,
    name: &str,
    reported: bool,
) -> anyhow::Result<(NodeOutcome, Option<SystemTime>)> {
    let node = plan
        .resolved
        .topology()
        .node(name)
        .with_context(|| format!("{name} is not in the topology"))?;
    let address = plan
        .resolved
        .node_ip(name)
        .with_context(|| format!("{name} has no resolved address"))?;
    let outcome = |action| NodeOutcome {
        node: name.to_owned(),
        cluster: node.cluster.clone(),
        address,
        action,
    };
    let now = SystemTime::now();
    let existing = provider.info(name).await.map_err(provider_exit)?;
    let action = match existing.map(|vm| vm.state) {
        Some(VmState::Running) if reported => return Ok((outcome(Action::Unchanged), None)),
        Some(VmState::Stopped) if reported => {
            provider.start(name).await.map_err(provider_exit)?;
            return Ok((outcome(Action::Started), Some(now)));
        }
        // Never reported: its token may be spent or expired, so launch it
        // again with a fresh one (without purge: a key or buffer it holds stays).
        Some(_) => {
            provider.delete(name, false).await.map_err(provider_exit)?;
            Action::Recreated
        }
        None => Action::Launched,
    };
    let token = client
        .issue_token(name, DEFAULT_TOKEN_TTL)
        .await
        .with_context(|| format!("issuing an enrolment token for {name}"))?;
    let layout = provider.agent_layout(name);
    let config = NodeAgentConfig::new(NodeConfigInput {
        node: name,
        cluster: &node.cluster,
        control_plane: node.role == NodeRole::ControlPlane,
        node_address: address,
        host_address: plan.resolved.host_agent_address(),
        host_port: plan.resolved.host_agent_port(),
        ca_pem: &plan.ca_pem,
        token: Some(token.token),
        report_interval_seconds: plan.report_interval,
        buffer_capacity: plan.buffer_capacity,
        layout: &layout,
    });
    let spec = LaunchSpec {
        name: name.to_owned(),
        cpus: node.cpus,
        memory_bytes: node.memory.bytes(),
        disk_bytes: node.disk.bytes(),
        address,
        prefix_len: plan.resolved.subnet().prefix_len(),
        gateway: plan.resolved.host_agent_address(),
        node_agent_config: config.to_yaml()?,
        user_data: None,
    };
    provider.launch(&spec).await.map_err(provider_exit)?;
    Ok((outcome(action), Some(now)))
}

fn describe(action: Action) -> &'static str {
    match action {
        Action::Unchanged => "already running and reporting",
        Action::Started => "started",
        Action::Recreated => "recreated (it had never reported)",
        Action::Launched => "launched",
    }
}

fn summary_table(rows: &[NodeOutcome]) -> Table {
    let mut t = Table::new(["NODE", "CLUSTER", "ADDRESS", "ACTION"]);
    for r in rows {
        let action = serde_json::to_value(r.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        t.row([
            r.node.clone(),
            r.cluster.clone(),
            r.address.to_string(),
            action,
        ]);
    }
    t
}

/// Progress lines: stdout for people, stderr when stdout carries JSON/YAML.
#[derive(Clone, Copy)]
struct Progress(OutputFormat);

impl Progress {
    fn line(&self, text: String) {
        match self.0 {
            OutputFormat::Table => println!("{text}"),
            _ => eprintln!("{text}"),
        }
    }
}

/// Precondition failures (root, `ip`, binaries) get their own exit code.
pub(crate) fn provider_exit(e: ProviderError) -> anyhow::Error {
    match e {
        ProviderError::NotInstalled { .. } | ProviderError::Precondition(_) => {
            coded(Exit::Precondition, e)
        }
        other => anyhow::Error::new(other),
    }
}

/// Resolves the topology's addresses against the provider's network;
/// every problem is reported at once.
async fn resolve(topology: &Topology, provider: &dyn Provider) -> anyhow::Result<Resolved> {
    let subnet = provider.subnet().await.map_err(provider_exit)?;
    let resolved = topology
        .resolve(subnet)
        .map_err(|d| coded(Exit::InvalidTopology, anyhow::anyhow!("{d}")))?;
    for w in resolved.warnings() {
        eprintln!("{w}");
    }
    Ok(resolved)
}

fn selected_nodes(resolved: &Resolved, only: Option<&str>) -> anyhow::Result<Vec<String>> {
    let topology = resolved.topology();
    if let Some(cluster) = only
        && topology.cluster(cluster).is_none()
    {
        let known: Vec<&str> = topology
            .clusters()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(coded(
            Exit::Usage,
            anyhow::anyhow!("no cluster {cluster:?} in the topology (it has {known:?})"),
        ));
    }
    Ok(topology
        .nodes()
        .iter()
        .filter(|n| only.is_none_or(|c| n.cluster == c))
        .map(|n| n.name.clone())
        .collect())
}
