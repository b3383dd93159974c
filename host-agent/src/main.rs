//! `hostctl`: the host agent's command line. Everything lives in the
//! `host_agent` library; this file only maps its outcome to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    host_agent::cli::main()
}
