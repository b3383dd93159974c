//! `hostctl recover etcd <cluster>`: the spec's recovery scenarios
//! (§10.3) as commands (the steps and checks are in [`crate::recover`]).
//! Each prints `[n/N] <step> … done in <t>`, then the total against the
//! scenario's RTO; a rerun after a failure continues from the step that
//! failed with the source the first run chose.

use crate::cli::{Context, coded};
use crate::exit::Exit;
use crate::recover::etcd::{self, RTO, SCENARIO, STEPS};
use crate::recover::record::Record;
use crate::recover::{RecoverError, human, verdict};
use crate::snapshots::{SnapshotInfo, SnapshotStore};
use crate::workspace::Workspace;
use anyhow::{Context as _, anyhow, bail};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// etcd data damage (RTO 30 min): restore the cluster's newest (or a
    /// named) etcd snapshot, from the host or the object store, and wait
    /// for its API server.
    Etcd(EtcdArgs),
}

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

pub fn run(ctx: &Context, args: &Args) -> anyhow::Result<Exit> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match &args.command {
        Sub::Etcd(a) => crate::cli::block_on(recover_etcd(ctx, a))?,
    }
}

/// Prints a step's closing line.
fn step_line(n: usize, title: &str, how: &str) -> anyhow::Result<()> {
    crate::stdout::line(format_args!("[{n}/{}] {title} … {how}", STEPS.len()))
}

/// The steps' shared state: the chosen snapshot once step 1 has run or
/// the record says it has.
struct Chosen {
    path: PathBuf,
    info: SnapshotInfo,
}

async fn recover_etcd(ctx: &Context, args: &EtcdArgs) -> anyhow::Result<Exit> {
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
    let store = SnapshotStore::new(home);
    let mut record = Record::open(
        home,
        SCENARIO,
        cluster,
        args.snapshot.as_deref(),
        args.restart,
        SystemTime::now(),
        etcd::names,
    )
    .map_err(|e| coded(Exit::Usage, e))?;
    if record.resumed() {
        crate::stdout::line(format_args!(
            "resuming the recovery of {cluster} started {} ago ({}; --restart starts over)",
            human(record.elapsed(SystemTime::now())),
            record.file().display()
        ))?;
    }

    let mut chosen: Option<Chosen> = None;
    for (i, (id, title)) in STEPS.iter().enumerate() {
        let n = i + 1;
        if let Some(took) = record.done_in(id) {
            // Step 1's choice is on the record; later steps need its file.
            if chosen.is_none()
                && let Some(source) = &record.source
            {
                let (path, info) = store.find(cluster, source).with_context(|| {
                    format!(
                        "the snapshot {source} the interrupted recovery chose \
                         (--restart chooses again)"
                    )
                })?;
                chosen = Some(Chosen { path, info });
            }
            step_line(
                n,
                title,
                &format!("done in an earlier run ({})", human(took)),
            )?;
            continue;
        }
        let started = Instant::now();
        let outcome = run_step(ctx, &workspace, &store, args, id, &mut chosen).await;
        let took = started.elapsed();
        match outcome {
            Ok(()) => {
                if let (true, Some(c)) = (*id == "choose", &chosen) {
                    record.choose(&c.info.file);
                }
                record.complete(id, took)?;
                step_line(n, title, &format!("done in {}", human(took)))?;
            }
            Err(e) => {
                step_line(n, title, &format!("failed after {}", human(took)))?;
                return Err(e.context(format!(
                    "step {n} ({title}) of recovering {cluster}; the same command again \
                     continues from this step with the same snapshot"
                )));
            }
        }
    }
    crate::stdout::line(verdict(record.elapsed(SystemTime::now()), RTO))?;
    record.finish()?;
    Ok(Exit::Ok)
}

async fn run_step(
    ctx: &Context,
    workspace: &Workspace,
    store: &SnapshotStore,
    args: &EtcdArgs,
    id: &str,
    chosen: &mut Option<Chosen>,
) -> anyhow::Result<()> {
    let cluster = args.cluster.as_str();
    let name = args.snapshot.as_deref();
    match id {
        "choose" => {
            let local = if args.from_store {
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
                    let storage = super::storage::real(ctx, &workspace.resolved);
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
            *chosen = Some(Chosen { path, info });
            Ok(())
        }
        "check" => {
            let c = chosen
                .as_ref()
                .ok_or_else(|| anyhow!("no snapshot chosen"))?;
            etcd::check_cluster(&c.path.with_extension("json"), &c.info, cluster)
                .map_err(refusal)?;
            crate::stdout::line(format_args!(
                "      {} is {cluster}'s (revision {}, taken by {}, {} bytes)",
                c.info.file, c.info.revision, c.info.node, c.info.size
            ))?;
            Ok(())
        }
        "restore" => {
            let c = chosen
                .as_ref()
                .ok_or_else(|| anyhow!("no snapshot chosen"))?;
            super::etcd::restore_on_node(ctx, cluster, &c.path, &c.info, args.address.as_deref())
                .await
        }
        "api" => {
            wait_api(
                ctx,
                workspace,
                cluster,
                Duration::from_secs(args.api_within),
            )
            .await
        }
        other => bail!("unknown step {other}"),
    }
}

/// A recovery's refusals (another cluster's snapshot, a copy that fails its
/// checks, none to restore) exit with [`Exit::Precondition`]; the store or
/// the disk failing is a plain failure.
fn refusal(e: RecoverError) -> anyhow::Error {
    match e {
        RecoverError::WrongCluster { .. }
        | RecoverError::Mismatch { .. }
        | RecoverError::BadMetadata { .. }
        | RecoverError::Conflict { .. }
        | RecoverError::NoSnapshot { .. } => coded(Exit::Precondition, e),
        other => other.into(),
    }
}

/// Polls the API server's `/readyz` (which includes etcd) with a freshly
/// minted admin client until it answers, or fails after `within` with the
/// last answer.
async fn wait_api(
    ctx: &Context,
    workspace: &Workspace,
    cluster: &str,
    within: Duration,
) -> anyhow::Result<()> {
    use crate::cluster_api::client::admin_client;
    use crate::cluster_api::health::{STATUS_TIMEOUT, api_health};
    let pki = certs::Pki::open(ctx.home.root()).context("the home's PKI")?;
    let deadline = Instant::now() + within;
    loop {
        let last = match admin_client(&pki, &workspace.resolved, cluster, STATUS_TIMEOUT).await {
            Ok((client, _)) => {
                let health = api_health(&client).await;
                if health.ok {
                    return Ok(());
                }
                health.error.unwrap_or_default()
            }
            Err(e) => e.to_string(),
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
