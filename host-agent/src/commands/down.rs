//! `hostctl down`: remove every machine of this home, the provider's network
//! (the local bridge), stop the daemon, and forget `up`'s step state (it
//! describes machines that no longer exist).
//!
//! - `down`: the PKI (`pki/`), the daemon's report store, kubeconfigs,
//!   snapshots and the rendered files are kept, so the next `up` reuses
//!   the same CAs.
//! - `down --purge`: also the machines' leftovers (Multipass's deleted
//!   instances, the local node root directories with agent keys and logs,
//!   the provider's state and recorded choice), `render/`, and the PKI, so
//!   the next `up` starts from new CAs.
//! - `down --purge --keep-pki`: all of that except the PKI.
//!
//! Etcd snapshots and the report store are never removed: they are data.
//! The host's object store (`storage up`, started by `up` when backups
//! are managed) is stopped, its buckets kept (`hostctl storage down
//! --purge` deletes them): they are the backups a later `up` and `recover`
//! restore from.

use crate::cli::{Context, coded};
use crate::commands::up::provider_exit;
use crate::daemon::ControlClient;
use crate::daemon::config::socket_path;
use crate::daemon::lifecycle::PidLock;
use crate::exit::Exit;
use crate::provider::{self, Provider, ProviderError, SelectError};
use anyhow::Context as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a daemon gets to stop after `Shutdown`.
const DAEMON_STOP: Duration = Duration::from_secs(15);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also remove the machines' disks / root directories, the provider's
    /// state, the rendered files and the PKI (new CAs on the next `up`).
    #[arg(long)]
    purge: bool,
    /// With --purge: keep the PKI (the next `up` reuses the same CAs).
    #[arg(long, requires = "purge")]
    keep_pki: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<Exit> {
    crate::cli::block_on(down(ctx, args))?
}

async fn down(ctx: &Context, args: Args) -> anyhow::Result<Exit> {
    let home = ctx.home.root();
    let provider: Option<Arc<dyn Provider>> = match provider::for_home(home) {
        Ok(p) => Some(Arc::from(p)),
        Err(SelectError::NoneRecorded { .. }) => None,
        Err(e) => return Err(coded(Exit::Precondition, e)),
    };
    let mut failures = Vec::new();
    let mut precondition = false;
    if let Some(provider) = &provider {
        let machines = provider.list().await.map_err(provider_exit)?;
        let mut deletions = tokio::task::JoinSet::new();
        for vm in machines {
            let provider = provider.clone();
            deletions.spawn(async move {
                let result = provider.delete(&vm.name, args.purge).await;
                (vm.name, result)
            });
        }
        while let Some(joined) = deletions.join_next().await {
            let (name, result) = joined.context("a deletion task panicked")?;
            match result {
                Ok(()) => eprintln!("{name}: deleted"),
                Err(e) => {
                    precondition |= matches!(
                        e,
                        ProviderError::Precondition(_) | ProviderError::NotInstalled { .. }
                    );
                    failures.push(format!("{name}: {e}"));
                }
            }
        }
    }
    // Machines that remain still report: keep the daemon and network for
    // them, and say what went wrong.
    if !failures.is_empty() {
        let err = anyhow::anyhow!(
            "some machines could not be deleted (the daemon and network are left running):\n  {}",
            failures.join("\n  ")
        );
        return Err(if precondition {
            coded(Exit::Precondition, err)
        } else {
            err
        });
    }
    stop_storage(ctx).await?;
    stop_daemon(home).await?;
    if let Some(provider) = &provider {
        provider.teardown(args.purge).await.map_err(provider_exit)?;
        eprintln!("{} provider network removed", provider.name());
    }
    remove(&home.join(crate::orchestrator::STATE_FILE))?;
    // No machines, no network to remember: the next `up` asks the provider.
    remove(&home.join(crate::workspace::NETWORK_FILE))?;
    let pki_kept = !args.purge || args.keep_pki;
    if args.purge {
        forget_kubeconfig_entries(home)?;
        for leftover in [
            "provider",
            "provider-machines",
            "render",
            "multipass-scratch",
            "kubeconfigs",
        ] {
            remove(&home.join(leftover))?;
        }
        if !args.keep_pki {
            remove(&ctx.home.pki())?;
        }
    }
    crate::stdout::line(format_args!(
        "down: the machines of {} removed ({})",
        home.display(),
        if pki_kept {
            "PKI kept"
        } else {
            "PKI removed: the next `up` creates new CAs"
        }
    ))?;
    Ok(Exit::Ok)
}

/// Stops the host's object store if `up` set one up for this home (its
/// data kept); nothing to do without one or without a recorded workspace.
async fn stop_storage(ctx: &Context) -> anyhow::Result<()> {
    let layout = crate::storage::layout::Layout::new(ctx.home.root());
    if !layout.root().exists() {
        return Ok(());
    }
    let Ok(workspace) = crate::workspace::Workspace::recorded(ctx) else {
        return Ok(());
    };
    let storage = crate::commands::storage::real(ctx, &workspace.resolved);
    for line in storage.down(false).await? {
        eprintln!("storage: {line} (its buckets are kept)");
    }
    Ok(())
}

/// Removes from the user's kubeconfig(s) exactly the entries `up` merged
/// (its record says which, per file), then the record.
fn forget_kubeconfig_entries(home: &std::path::Path) -> anyhow::Result<()> {
    use crate::orchestrator::steps::kubeconfig::MergedRecord;
    use crate::state_file::StateDocument as _;
    let path = MergedRecord::path(home);
    let record = MergedRecord::load(&path)?;
    for (file, names) in &record.files {
        let names: Vec<String> = names.iter().cloned().collect();
        crate::cluster_api::merge::remove_from_file(file, &names)
            .with_context(|| format!("removing hostctl's entries from {}", file.display()))?;
        eprintln!(
            "kubeconfig: removed {} from {}",
            names.join(", "),
            file.display()
        );
    }
    remove(&path)
}

fn remove(path: &std::path::Path) -> anyhow::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    result.with_context(|| format!("removing {}", path.display()))
}

/// Asks a running daemon to stop and waits until it has let go of its lock.
async fn stop_daemon(home: &std::path::Path) -> anyhow::Result<()> {
    let Ok(mut client) = ControlClient::connect(&socket_path(home)).await else {
        return Ok(()); // not running
    };
    client
        .shutdown()
        .await
        .context("asking the daemon to stop")?;
    let deadline = Instant::now() + DAEMON_STOP;
    while PidLock::is_held(home)? {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the daemon did not stop within {} s (see {})",
                DAEMON_STOP.as_secs(),
                crate::daemon::config::log_path(home).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("daemon stopped");
    Ok(())
}
