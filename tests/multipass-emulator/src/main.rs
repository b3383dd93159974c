//! `multipass-emulator`: a stand-in for Multipass, for tests only.
//!
//! Tests put a symlink named `multipass` to this binary first on `PATH` and
//! run hostctl's real Multipass provider against it. It answers the
//! commands and flags that provider uses, with the real client's JSON
//! shapes, messages and exit codes, over machines that are network
//! namespaces (fast mode) or QEMU VMs (VM mode) on an emulated vmnet-shared
//! network: a bridge with 192.168.252.1/24 and a real DHCP server. See
//! README.md for the contract.
#![allow(
    clippy::disallowed_methods,
    reason = "a test-only stand-in: it runs its machines' programs itself"
)]

mod agent_config;
mod cli;
mod cloud_config;
mod cloud_init;
mod commands;
mod config;
mod dhcp;
mod dhcp_client;
mod dnsmasq;
mod error;
mod fast;
mod fsutil;
mod info;
mod ip;
mod launch;
mod leases;
mod names;
mod netplan;
mod network;
mod process;
mod state;
mod supervisor;
mod teardown;
mod units;
mod vm;
mod write_files;

use clap::Parser as _;
use cli::{Cli, Cmd};
use config::Config;
use error::Failure;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                error::COMMAND_LINE_ERROR
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(command: Cmd) -> Result<(), Failure> {
    let cfg = |name: &str| Config::from_env(name);
    match command {
        Cmd::Launch(a) => launch::run(&cfg("launch")?, a),
        Cmd::Start(t) => commands::start(&cfg("start")?, t),
        Cmd::Stop(a) => commands::stop(&cfg("stop")?, a),
        Cmd::Delete(a) => commands::delete(&cfg("delete")?, a),
        Cmd::Purge => commands::purge(&cfg("purge")?),
        Cmd::Recover(t) => commands::recover(&cfg("recover")?, t),
        Cmd::Info(a) => commands::info(&cfg("info")?, a),
        Cmd::List(f) => commands::list(&cfg("list")?, &f.format),
        Cmd::Version(f) => commands::version(&f.format),
        Cmd::Get { key } => commands::get(&key),
        Cmd::Networks(f) => commands::networks(&f.format),
        Cmd::Teardown => {
            teardown::run(&cfg("__teardown")?);
            Ok(())
        }
        Cmd::Supervise(a) => {
            let env = a
                .env
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            supervisor::run(supervisor::Spec {
                dir: a.dir,
                netns: a.netns,
                unit: a.unit,
                cwd: a.cwd,
                env,
                argv: a.argv.into_iter().map(Into::into).collect(),
            })
            .map_err(|e| Failure::failed("__supervise", format!("{e:#}")))
        }
        Cmd::Dhcp(a) => dhcp_client::run(
            &a.mac,
            &a.client_id,
            &a.hostname,
            Duration::from_millis(a.timeout_ms),
        )
        .map_err(|e| Failure::failed("__dhcp", format!("{e:#}"))),
        Cmd::Sleep { args } => {
            // A unit program for tests: shows what it was started with,
            // then waits to be stopped.
            println!("__sleep pid {} args {args:?}", std::process::id());
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}
