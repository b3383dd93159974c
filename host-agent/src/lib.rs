//! The host agent: reads the topology, owns the PKI, drives the provider,
//! serves the node agents and answers the CLI.
//!
//! Module map (follow the names):
//! - [`cli`]: argument parsing and dispatch; one file per command under [`commands`].
//! - [`home`]: the `$HOSTCTL_HOME` layout.
//! - [`output`]: `-o table|json|yaml` rendering shared by every command.
//! - [`exit`]: the documented exit codes.
//! - [`provider`]: the machine providers behind one trait.

pub mod cli;
pub mod commands;
pub mod exit;
pub mod home;
pub mod output;
pub mod provider;
