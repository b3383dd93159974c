//! `hostctl up`: reconcile the topology into running, enrolled, prepared
//! nodes. validate → provider network → PKI → daemon → the graph of
//! per-node steps ([`crate::orchestrator`]): render → launch → enrol →
//! prerequisites, every node in parallel, then per cluster kubeadm init,
//! kubeconfig, CNI, joins, nodes Ready and add-ons. State is persisted in
//! `$HOSTCTL_HOME/up-state.json`; rerunning after a failure, a crash or
//! Ctrl-C continues from what is done and never launches a machine twice.

use crate::cli::{Context, coded};
use crate::daemon;
use crate::environment;
use crate::exit::Exit;
use crate::orchestrator::steps::{self, Mirrors, UpContext, node_client::NodeDialer, userdata};
use crate::orchestrator::{Executor, RunReport, STATE_FILE, StateStore, progress};
use crate::output::{self, OutputFormat};
use crate::provider::local::LocalOptions;
use crate::provider::{self, NodeNetwork, Provider, ProviderError, ProviderKind, ProviderOptions};
use crate::topology_source::{self, TopologySource};
use crate::workspace::Workspace;
use anyhow::Context as _;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod select;
mod summary;

/// How long launches already under way get to finish after Ctrl-C.
const INTERRUPT_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Machine provider; defaults to the one recorded by the last `up`, and
    /// on a first run to multipass on macOS.
    #[arg(long, value_enum)]
    provider: Option<ProviderKind>,
    /// Bring up only the nodes of this cluster.
    #[arg(long, value_name = "CLUSTER")]
    only: Option<String>,
    /// Seconds between node health reports.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    report_interval: u32,
    /// Seconds each node gets to enrol and report after its launch.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    timeout: u64,
    /// Reports a node keeps while the host is unreachable.
    #[arg(long, value_name = "N", default_value_t = 1000, hide = true)]
    buffer_capacity: u32,
    /// The node-agent binary (run by the local provider, embedded in
    /// user-data otherwise); default: beside `hostctl`.
    #[arg(long, value_name = "PATH", env = environment::NODE_AGENT.name)]
    node_agent_bin: Option<PathBuf>,
    /// Also write this run's trace (host and node spans) to FILE as OTLP
    /// JSON; export to a collector follows OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, value_name = "FILE")]
    trace_file: Option<PathBuf>,
    /// Only bring up and prepare the nodes (render, launch, enrol,
    /// prerequisites); skip kubeadm, the CNI and the add-ons.
    #[arg(long)]
    nodes_only: bool,
    /// Seconds the cluster's nodes get to become Ready after the CNI.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    ready_timeout: u64,
    /// Keep the clusters' admin kubeconfigs under `$HOSTCTL_HOME/kubeconfigs`
    /// only; do not merge their contexts into `$KUBECONFIG` / `~/.kube/config`.
    #[arg(long)]
    no_kubeconfig: bool,
    /// Apply `DIR/gateway-api/*.yaml` and `DIR/metallb/*.yaml` instead of
    /// downloading the pinned upstream manifests (air-gapped hosts, tests).
    #[arg(long, value_name = "DIR", env = environment::MANIFESTS_DIR.name, hide = true)]
    manifests_dir: Option<PathBuf>,
    /// The kubeadm the nodes run (default: `kubeadm` on the node's PATH);
    /// local nodes run it even though they record other commands.
    #[arg(long, value_name = "PATH", env = environment::KUBEADM.name, hide = true)]
    kubeadm_bin: Option<PathBuf>,
}

impl Args {
    /// `up`'s arguments from `argv` (after `up`), with the defaults and the
    /// environment `hostctl up` would apply: how a recovery runs `up`'s
    /// graph for one cluster.
    pub(crate) fn parse(argv: &[String]) -> Result<Args, clap::Error> {
        #[derive(clap::Parser)]
        struct Up {
            #[command(flatten)]
            args: Args,
        }
        use clap::Parser as _;
        Ok(Up::try_parse_from(std::iter::once("up".to_owned()).chain(argv.iter().cloned()))?.args)
    }
}

/// Publishes the platform tree Argo CD syncs to the repository the daemon
/// serves (a no-op when it has not changed) and returns where Argo CD
/// finds it, with the daemon's certificate to pin. A host without `git`
/// still gets its clusters: the failure is a warning saying what Argo CD
/// will lack.
async fn publish_platform(
    ctx: &Context,
    resolved: &topology::Resolved,
) -> anyhow::Result<crate::addons::render::PlatformSource> {
    let home = ctx.home.root();
    let source =
        crate::gitops::platform_source(resolved, home).map_err(|e| coded(Exit::Precondition, e))?;
    let tree = crate::addons::argocd::platform::tree(resolved)?;
    let repo = crate::gitops::PlatformRepo::new(home, crate::exec::real());
    match repo.publish(&tree, "hostctl up: the platform tree").await {
        Ok(commit) => tracing::info!(commit = %commit.as_str(), "platform repository published"),
        Err(e) => eprintln!(
            "warning: cannot publish the platform repository Argo CD syncs ({}); Argo CD's ApplicationSets will report the repository as unavailable until a later `up` publishes it",
            telemetry::error_chain::chain(&e)
        ),
    }
    Ok(source)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<Exit> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    crate::cli::block_on(async {
        // --- tracing (docs/tracing.md): one trace per run ---
        use tracing::Instrument as _;
        let table = ctx.output == OutputFormat::Table;
        // The topology's collector, if it names one; a topology that does
        // not load is reported by `up` itself, right after.
        let topology_endpoint = TopologySource::locate(ctx.topology.as_deref())
            .load()
            .ok()
            .and_then(|(t, _)| t.telemetry)
            .and_then(|t| t.otlp_endpoint)
            .map(|url| url.as_str().to_owned())
            .or_else(|| platform_traces(ctx));
        let trace = crate::up_trace::UpTrace::start(
            daemon::config::socket_path(ctx.home.root()),
            args.trace_file.clone(),
            table,
            topology_endpoint,
        );
        let result = up(ctx, args).instrument(trace.root()).await;
        trace.finish(&result).await;
        result
    })?
}

/// mgmt's Tempo, when neither the environment nor the topology names a
/// collector and a previous run installed it (see
/// [`crate::up_trace::platform`]); said on stderr so the user knows where
/// the trace went.
fn platform_traces(ctx: &Context) -> Option<String> {
    if telemetry::config::endpoint_from_env().is_some() {
        return None;
    }
    let workspace = crate::workspace::Workspace::recorded(ctx).ok()?;
    let endpoint = crate::up_trace::platform::mgmt_tempo(ctx.home.root(), &workspace.resolved)?;
    eprintln!("traces: exporting to mgmt's Tempo at {endpoint}");
    Some(endpoint)
}

pub(crate) async fn up(ctx: &Context, args: Args) -> anyhow::Result<Exit> {
    let home = ctx.home.root();
    let kind = provider::choose(args.provider, home)?.ok_or_else(|| {
        coded(
            Exit::Usage,
            anyhow::anyhow!(
                "choose a provider: `sudo hostctl up` runs the nodes as agents in network namespaces (local provider, needs root); `hostctl up --provider qemu` boots VMs from HOSTCTL_QEMU_IMAGE; `--provider multipass` uses Multipass"
            ),
        )
    })?;
    let topology = topology_source::load_checked(ctx.topology.as_deref())?;
    let managed: BTreeSet<String> = topology.nodes().iter().map(|n| n.name.clone()).collect();
    let options = ProviderOptions {
        local: LocalOptions {
            node_agent: args.node_agent_bin.clone(),
            supervisor_exe: None,
        },
        managed: managed.clone(),
    };
    let provider: Arc<dyn Provider> =
        Arc::from(provider::open(kind, home, options).map_err(|e| coded(Exit::Precondition, e))?);
    // Resolve once: the provider says which network its machines use; every
    // later step (and every later command, through the record) uses that.
    let workspace = Workspace::from_provider(ctx, topology, provider.as_ref()).await?;
    topology_source::print_warnings(workspace.resolved.warnings());
    let previous = crate::workspace::read_record(&home.join(crate::workspace::NETWORK_FILE))?;
    let nodes = select::nodes(&workspace.resolved, args.only.as_deref())?;
    provider.preflight().await.map_err(provider_exit)?;
    // The agent the machines get, checked once before anything is created.
    let payload = match kind {
        ProviderKind::Multipass | ProviderKind::Qemu => {
            let source = userdata::PayloadSource::new(userdata::locate_node_agent(
                args.node_agent_bin.as_deref(),
            ));
            userdata::preflight(&source)
                .await
                .map_err(|e| coded(Exit::Precondition, e))?;
            source
        }
        ProviderKind::Local => userdata::PayloadSource::placeholder(),
    };
    // The network first: it is the first step that needs privileges, so a
    // missing precondition (root, `ip`) is reported before anything else.
    let network = NodeNetwork {
        subnet: workspace.subnet(),
        host_address: workspace.resolved.host_agent_address(),
    };
    provider.prepare(&network).await.map_err(provider_exit)?;
    // Recorded as soon as something exists, so that `down` finds (and
    // removes) it even when this run fails right after (a damaged PKI, a
    // port in use once left the local bridge behind for good).
    provider::record_choice(home, kind)?;
    provider::record_machines(home, &managed)?;
    // A DHCP lease on an address the topology pins breaks a cluster later
    // and obscurely: refuse before anything is launched.
    crate::doctor::leases::refuse_collisions(&workspace.resolved, kind)
        .map_err(|e| coded(Exit::Precondition, e))?;
    let pki = crate::pki::ensure_pki(ctx, &workspace.resolved)?;
    workspace.record(provider.name())?;
    // A daemon started for another network (or with the old host
    // certificate) would hand out certificates for the wrong addresses.
    let stale_daemon = match pki.host_reissued() {
        Some(change) => {
            note(ctx.output, change.to_string());
            true
        }
        None => previous.subnet.is_some_and(|s| s != workspace.subnet()),
    };
    let control = if stale_daemon {
        daemon::lifecycle::restart(ctx, workspace.topology_file()).await
    } else {
        daemon::ensure_running(ctx, workspace.topology_file()).await
    }
    .context("starting the daemon")?;
    note(
        ctx.output,
        format!(
            "network {} (host {}) via the {} provider; daemon answering",
            network.subnet,
            network.host_address,
            provider.name()
        ),
    );

    let cluster = steps::cluster::ClusterSettings {
        helm: Arc::new(crate::helm::HelmCli::from_env()),
        charts: crate::commands::charts::store(ctx, &workspace),
        manifests: steps::cluster::Manifests::from_option(args.manifests_dir.as_deref()),
        kubeconfig_target: if args.no_kubeconfig {
            None
        } else {
            crate::cluster_api::merge::target_path(
                environment::standard::KUBECONFIG.os().as_deref(),
                environment::standard::HOME
                    .os()
                    .map(PathBuf::from)
                    .as_deref(),
            )
        },
        kubeconfig_dir: home.join("kubeconfigs"),
        merged: crate::state_file::StateFile::new(steps::kubeconfig::MergedRecord::path(home)),
        kubeadm_binary: args.kubeadm_bin.clone(),
        ready_timeout: Duration::from_secs(args.ready_timeout),
        init_locks: steps::cluster::InitLocks::default(),
        addons: steps::cluster::AddonSettings {
            platform: publish_platform(ctx, &workspace.resolved).await?,
            record: crate::state_file::StateFile::new(crate::addons::record::AddonRecord::path(
                home,
            )),
            limits: crate::addons::install::Limits::default(),
            vault: steps::cluster::VaultSettings {
                home: home.to_path_buf(),
                address: crate::secrets::address_override(),
                wait: vault::WaitPolicy::default(),
            },
            backups: Default::default(),
        },
        pki: Arc::new(pki),
    };
    let lab_ca_pem = cluster.pki.lab_root().map(|l| l.cert_pem().to_owned());
    let up = Arc::new(UpContext {
        home: home.to_path_buf(),
        ca_pem: cluster.pki.agent_ca_pem().to_owned(),
        nodes: NodeDialer::new(&cluster.pki),
        cluster,
        resolved: workspace.resolved.clone(),
        needs_user_data: matches!(kind, ProviderKind::Multipass | ProviderKind::Qemu),
        provider,
        control,
        report_interval: args.report_interval,
        buffer_capacity: args.buffer_capacity,
        render_dir: home.join("render"),
        payload,
        enrol_timeout: Duration::from_secs(args.timeout),
        mirrors: Mirrors::from_topology(
            &workspace.topology,
            workspace.resolved.host_agent_address(),
            lab_ca_pem.as_deref(),
        ),
        host_mirrors: Arc::new(crate::commands::mirrors::HostMirrors::new(ctx, &workspace)),
        host_object_store: Arc::new(crate::commands::storage::HostObjectStore::new(
            ctx, &workspace,
        )),
    });
    // The local provider's nodes share this machine's kernel and record
    // kubeadm instead of running it: without a kubeadm to run (the tests'
    // stand-in), the Kubernetes steps could only wait for an API server that
    // cannot exist. Plan what can succeed, and say what was left out.
    let local_without_kubeadm = kind == ProviderKind::Local && args.kubeadm_bin.is_none();
    let scope = if args.nodes_only || local_without_kubeadm {
        steps::Scope::Nodes
    } else {
        steps::Scope::Clusters
    };
    let plan = steps::plan(&up, &nodes, scope)?;
    let store = StateStore::open(&home.join(STATE_FILE))?;
    let observer: Arc<dyn crate::orchestrator::Observer> =
        Arc::from(progress::for_output(ctx.output == OutputFormat::Table));
    // --- tracing: step spans carry node, cluster, provider, version ---
    let observer: Arc<dyn crate::orchestrator::Observer> = Arc::new(
        crate::up_trace::TracedObserver::new(observer, plan.targets.clone(), up.provider.name()),
    );
    let executor = Executor {
        store: store.clone(),
        observer: observer.clone(),
        grace: INTERRUPT_GRACE,
    };
    let (first, second) = interrupts();
    let report = executor.run(&plan.graph, first, second).await?;
    // Nothing may draw over the summary that follows.
    observer.close();
    drop(observer);
    store.flush()?;
    print_summary(ctx.output, &report)?;
    if scope == steps::Scope::Clusters {
        summary::clusters(ctx.output, &up, &plan.targets).await;
        if let Some(line) = summary::kubeconfig(&up) {
            note(ctx.output, line);
        }
    }
    let verdict = verdict(&report);
    if verdict.is_ok() && local_without_kubeadm && !args.nodes_only {
        note(ctx.output, LOCAL_SCOPE_NOTE.to_owned());
    }
    verdict
}

/// The last line of a local `up`: what ran, and what it did not.
pub const LOCAL_SCOPE_NOTE: &str = "done: nodes enrolled, reporting and prepared (local provider). Not done: kubeadm, the CNI and the add-ons — local nodes share this machine's kernel and record kubeadm instead of running it. For real clusters use `--provider qemu` (Linux VMs, see the README) or Multipass on a Mac.";

/// The first and the second Ctrl-C, as two futures.
fn interrupts() -> (
    impl std::future::Future<Output = ()>,
    impl std::future::Future<Output = ()>,
) {
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = first_tx.send(());
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = second_tx.send(());
            }
        }
    });
    let wait = |rx: tokio::sync::oneshot::Receiver<()>| async move {
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    (wait(first_rx), wait(second_rx))
}

/// Exit status and message from the run's outcome.
fn verdict(report: &RunReport) -> anyhow::Result<Exit> {
    if report.interrupted {
        return Err(coded(
            Exit::Interrupted,
            anyhow::anyhow!("interrupted; run `hostctl up` again to continue"),
        ));
    }
    let failed = report.failed();
    if !failed.is_empty() {
        let lines: Vec<String> = failed
            .iter()
            .map(|r| {
                r.failure()
                    .unwrap_or_else(|| format!("{}: {}", r.id, r.outcome.label()))
            })
            .collect();
        anyhow::bail!(
            "{} step(s) failed (the others went on; fix the cause and run `hostctl up` again):\n  {}",
            lines.len(),
            lines.join("\n  ")
        );
    }
    Ok(Exit::Ok)
}

fn print_summary(format: OutputFormat, report: &RunReport) -> anyhow::Result<()> {
    let rows = progress::summary(report);
    let text = match format {
        OutputFormat::Table => progress::summary_tables(&rows),
        _ => output::render(format, &rows, crate::output::Table::default)?,
    };
    crate::stdout::write(&text)?;
    if format == OutputFormat::Table {
        let nodes = rows
            .iter()
            .filter(|r| r.table == progress::Group::Node)
            .count();
        crate::stdout::line(format_args!(
            "{nodes} node(s), {} step(s) in {:.1} s",
            report.results.len(),
            report.wall.as_secs_f64()
        ))?;
    }
    Ok(())
}

/// Progress notes: stdout for people, stderr when stdout carries JSON/YAML.
fn note(format: OutputFormat, text: String) {
    match format {
        OutputFormat::Table => {
            let _ = crate::stdout::line(&text);
        }
        _ => eprintln!("{text}"),
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
