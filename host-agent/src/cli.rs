//! Argument parsing and dispatch. Commands live in [`crate::commands`]; this
//! file only knows their names, the global options, and how failures map to
//! exit codes.

use crate::commands;
use crate::exit::Exit;
use crate::home::Home;
use crate::output::OutputFormat;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Builds and runs a local multi-cluster Kubernetes environment (mgmt, app1,
/// app2) on VMs, with a node agent in every VM instead of SSH.
#[derive(Debug, Parser)]
#[command(name = "hostctl", version, propagate_version = true, about, long_about = None)]
pub struct Cli {
    /// State directory (PKI, store, snapshots, kubeconfigs).
    #[arg(long, global = true, env = crate::environment::HOME.name, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Output format for commands that print data.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// Topology file (default: ./hostctl.yaml if present, else the built-in default).
    #[arg(long, global = true, env = crate::environment::TOPOLOGY.name, value_name = "FILE")]
    pub topology: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the default topology (the spec's three clusters) and create the PKI.
    Init(commands::init::Args),
    /// Check a topology and report every problem with file, line, field and fix.
    Validate(commands::validate::Args),
    /// Write everything hostctl would apply into a directory, for review.
    Render(commands::render::Args),
    /// Inspect the PKI.
    Certs(commands::certs::Args),
    /// The platform add-ons: the catalogue, and their state per cluster.
    Addons(commands::addons::Args),
    /// The pinned charts: cache them (and push them to the registry
    /// mirror) so installs need no internet.
    Charts(commands::charts::Args),
    /// Harbor and Nexus on the host's Docker (`mirrors: { managed: true }`).
    Mirrors(commands::mirrors::Args),
    /// The host's object store for backups and snapshots (Garage).
    Storage(commands::storage::Args),
    /// mgmt's Vault: its state, and unsealing it after a restart.
    Vault(commands::vault::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(commands::completion::Args),
    /// Run the host agent's services (node reports, enrolment, control
    /// socket) in the foreground; other commands start it when needed.
    Daemon(commands::daemon::Args),
    /// Show every node: VM state, agent connection, last report, failing checks.
    Status(commands::status::Args),
    /// Check the architecture contracts (C1–C6) against what hostctl
    /// renders, each with a verdict and its evidence.
    Verify(commands::verify::Args),
    /// Stream a node's journal through its agent.
    Logs(commands::logs::Args),
    /// Check the host, the provider and the topology before `up`.
    Doctor(commands::doctor::Args),
    /// Create the node machines, start the daemon and wait until every node
    /// agent has enrolled and reports.
    Up(commands::up::Args),
    /// Delete every machine and the provider's network, and stop the daemon
    /// (the PKI is kept unless --purge without --keep-pki).
    Down(commands::down::Args),
    /// etcd snapshots of the clusters: take, list, restore.
    Etcd(commands::etcd::Args),
    /// The spec's recovery scenarios, each timed against its RTO and
    /// resumable after a failure: `recover etcd <cluster>`.
    Recover(commands::recover::Args),
    /// Print admin kubeconfigs minted from the cluster CAs, or merge them
    /// into $KUBECONFIG / ~/.kube/config (contexts mgmt, app1, app2).
    Kubeconfig(commands::kubeconfig::Args),
    /// The local provider's per-node supervisor (internal).
    #[command(name = "local-supervise", hide = true)]
    LocalSupervise(commands::supervise::Args),
}

/// What every command may need from the global options.
#[derive(Debug, Clone)]
pub struct Context {
    pub home: Home,
    pub output: OutputFormat,
    /// `--topology` as given; see [`crate::topology_source`] for the fallbacks.
    pub topology: Option<PathBuf>,
}

/// A failure that carries its own exit code; anything else exits with
/// [`Exit::Failure`].
#[derive(Debug, thiserror::Error)]
#[error("{}", chain_text(inner))]
pub struct CodedError {
    pub exit: Exit,
    /// Not named `source`: the message already holds the whole chain, and a
    /// `source` would make `{:#}` print it a second time.
    pub inner: anyhow::Error,
}

/// Wraps `source` so that `hostctl` exits with `exit`.
pub fn coded(exit: Exit, source: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(CodedError {
        exit,
        inner: source.into(),
    })
}

/// An error and its causes on one line, `outer: cause: root`, leaving out a
/// cause whose text the line already holds: many errors name their source in
/// their own message (`cannot write X: {source}`) *and* keep it as
/// `source()`, and anyhow's `{:#}` then printed
/// `Read-only file system (os error 30): Read-only file system (os error 30)`.
pub fn chain_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let line = cause.to_string();
        if line.is_empty() || text.contains(&line) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&line);
    }
    text
}

/// Parses the command line, runs the command, prints any error, and returns
/// the documented exit code.
pub fn main() -> ExitCode {
    crate::home::private_umask();
    let cli = Cli::parse();
    let ctx = Context {
        home: Home::resolve(cli.home.clone()),
        output: cli.output,
        topology: cli.topology.clone(),
    };
    match dispatch(&ctx, cli.command) {
        Ok(exit) => exit.into(),
        Err(err) if crate::stdout::is_closed(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let exit = err
                .downcast_ref::<CodedError>()
                .map(|c| c.exit)
                .unwrap_or(Exit::Failure);
            eprintln!("error: {}", chain_text(&err));
            exit.into()
        }
    }
}

fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<Exit> {
    // `up` installs the logger together with its trace layer, the daemon
    // with its own default level.
    if !matches!(command, Command::Up(_) | Command::Daemon(_)) {
        crate::logging::init(crate::logging::CLI_DEFAULT);
    }
    // Everything but these reads or writes the home: it must be private.
    if !matches!(
        command,
        Command::Completion(_) | Command::Validate(_) | Command::LocalSupervise(_)
    ) {
        ctx.home
            .check_private()
            .map_err(|e| coded(Exit::Precondition, e))?;
    }
    match command {
        Command::Init(args) => commands::init::run(ctx, &args),
        Command::Validate(args) => commands::validate::run(ctx, &args),
        Command::Render(args) => commands::render::run(ctx, &args),
        Command::Certs(args) => commands::certs::run(ctx, &args),
        Command::Addons(args) => commands::addons::run(ctx, &args),
        Command::Charts(args) => commands::charts::run(ctx, &args),
        Command::Mirrors(args) => commands::mirrors::run(ctx, &args),
        Command::Storage(args) => commands::storage::run(ctx, &args),
        Command::Vault(args) => commands::vault::run(ctx, &args),
        Command::Completion(args) => commands::completion::run(&args),
        Command::Daemon(args) => commands::daemon::run(ctx, &args),
        Command::Status(args) => commands::status::run(ctx, &args),
        Command::Verify(args) => commands::verify::run(ctx, &args),
        Command::Logs(args) => commands::logs::run(ctx, &args),
        Command::Doctor(args) => commands::doctor::run(ctx, &args),
        Command::Up(args) => commands::up::run(ctx, args),
        Command::Down(args) => commands::down::run(ctx, args),
        Command::Etcd(args) => commands::etcd::run(ctx, &args),
        Command::Recover(args) => commands::recover::run(ctx, &args),
        Command::Kubeconfig(args) => commands::kubeconfig::run(ctx, &args),
        Command::LocalSupervise(args) => commands::supervise::run(args),
    }
}

/// Runs an async command body on a fresh multi-threaded runtime; commands
/// that need no I/O concurrency stay synchronous.
pub fn block_on<F: std::future::Future>(fut: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(fut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write /x/state.json: {source}")]
    struct Write {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::from_raw_os_error(30);
        let err = anyhow::Error::new(Write { source: io }).context("saving the step state");
        let text = chain_text(&err);
        assert_eq!(text.matches("os error 30").count(), 1, "{text}");
        assert!(
            text.starts_with("saving the step state: cannot write /x/state.json: "),
            "{text}"
        );
        let coded = coded(Exit::Failure, err);
        assert_eq!(chain_text(&coded).matches("os error 30").count(), 1);
    }
}
