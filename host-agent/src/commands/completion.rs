//! `hostctl completion <shell>`: prints a shell completion script.

use crate::exit::Exit;
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    pub shell: clap_complete::Shell,
}

/// Writes the completion script for `args.shell` to stdout.
pub fn run(args: &Args) -> anyhow::Result<Exit> {
    let mut cmd = crate::cli::Cli::command();
    // Into a buffer first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "hostctl", &mut script);
    crate::stdout::write(script)?;
    Ok(Exit::Ok)
}
