//! The command line: Multipass's commands and flags as hostctl uses them
//! (k8s-bootstrap.md §4.1), plus hidden commands the emulator runs itself
//! (`__supervise`, `__dhcp`), one for tests (`__sleep`) and the cleanup
//! (`__teardown`).
//!
//! Argument errors exit with Multipass's `CommandLineError` (1), not clap's
//! 2, which hostctl would read as a failed command.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "multipass",
    about = "A stand-in for Multipass, for tests only (multipass-emulator)",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create and start an instance.
    Launch(LaunchArgs),
    /// Start instances.
    Start(Targets),
    /// Stop instances.
    Stop(StopArgs),
    /// Delete instances (recoverable until purged, unless --purge).
    Delete(DeleteArgs),
    /// Remove deleted instances for good.
    Purge,
    /// Recover deleted instances.
    Recover(Targets),
    /// Show instance details.
    Info(InfoArgs),
    /// List instances.
    #[command(alias = "ls")]
    List(FormatArg),
    /// Show version details.
    Version(FormatArg),
    /// Get a configuration setting.
    Get { key: String },
    /// List available networks.
    Networks(FormatArg),
    /// Stop every machine, dnsmasq, and remove the bridge, namespaces,
    /// veths and taps; idempotent (test cleanup).
    #[command(name = "__teardown", hide = true)]
    Teardown,
    #[command(name = "__supervise", hide = true)]
    Supervise(SuperviseArgs),
    #[command(name = "__dhcp", hide = true)]
    Dhcp(DhcpArgs),
    /// Prints its arguments and sleeps until killed: a unit program for
    /// tests.
    #[command(name = "__sleep", hide = true)]
    Sleep {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Image (`24.04`, `noble`, …); recorded, the emulated OS is the same.
    pub image: Option<String>,
    #[arg(short, long)]
    pub name: Option<String>,
    #[arg(short, long)]
    pub cpus: Option<String>,
    #[arg(short, long, alias = "mem")]
    pub memory: Option<String>,
    #[arg(short, long)]
    pub disk: Option<String>,
    #[arg(long = "cloud-init")]
    pub cloud_init: Option<String>,
    #[arg(long)]
    pub timeout: Option<String>,
    #[arg(long)]
    pub network: Vec<String>,
    #[arg(long)]
    pub bridged: bool,
    #[arg(long)]
    pub mount: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Targets {
    pub names: Vec<String>,
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    pub names: Vec<String>,
    #[arg(long)]
    pub all: bool,
    /// Delayed shutdown is not emulated: machines stop at once.
    #[arg(short, long)]
    pub time: Option<String>,
    #[arg(short, long)]
    pub cancel: bool,
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub names: Vec<String>,
    #[arg(long)]
    pub all: bool,
    #[arg(short, long)]
    pub purge: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    pub names: Vec<String>,
    #[arg(long)]
    pub all: bool,
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct FormatArg {
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long)]
    pub netns: String,
    #[arg(long)]
    pub unit: String,
    #[arg(long)]
    pub cwd: PathBuf,
    #[arg(long = "env")]
    pub env: Vec<String>,
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DhcpArgs {
    #[arg(long)]
    pub mac: String,
    #[arg(long = "client-id")]
    pub client_id: String,
    #[arg(long)]
    pub hostname: String,
    #[arg(long = "timeout-ms")]
    pub timeout_ms: u64,
}
