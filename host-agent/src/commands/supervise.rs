//! `hostctl local-supervise` (hidden): the local provider's stand-in for
//! systemd, started detached by the provider once per node. See
//! [`crate::provider::local::supervisor`].

use crate::exit::Exit;
use crate::provider::local::supervisor::{self, Supervise};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node's network namespace.
    #[arg(long)]
    netns: String,
    /// The `ip` binary used for `ip netns exec`.
    #[arg(long, default_value = "ip")]
    ip: PathBuf,
    /// Where to write the supervisor's own pid.
    #[arg(long)]
    pidfile: PathBuf,
    /// Where to write the running agent's pid.
    #[arg(long)]
    agent_pidfile: PathBuf,
    /// The file the agent's stdout and stderr are appended to.
    #[arg(long)]
    agent_log: PathBuf,
    /// The agent's command line, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let spec = Supervise {
        netns: args.netns,
        ip: args.ip,
        pidfile: args.pidfile,
        agent_pidfile: args.agent_pidfile,
        agent_log: args.agent_log,
        command: args.command,
    };
    crate::cli::block_on(supervisor::run(spec))??;
    Ok(Exit::Ok)
}
