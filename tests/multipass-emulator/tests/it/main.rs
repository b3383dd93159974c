//! The Multipass emulator's own tests, one binary: its CLI contract, the fast
//! mode and the VM mode.
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

mod cli;
mod common;
mod fast_mode;
mod vm_mode;
