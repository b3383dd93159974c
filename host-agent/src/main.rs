//! `hostctl`: the host agent's command line. Everything lives in the
//! `host_agent` library; this file only maps its outcome to an exit code.
#![cfg_attr(
    test,
    allow(clippy::disallowed_methods, reason = "unit tests write fixtures")
)]

use std::process::ExitCode;

fn main() -> ExitCode {
    host_agent::cli::main()
}
