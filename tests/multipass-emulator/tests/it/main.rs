//! The Multipass emulator's own tests, one binary: its CLI contract, the fast
//! mode and the VM mode.
#![allow(
    clippy::disallowed_methods,
    reason = "tests set up fixtures and run stand-ins directly"
)]

mod cli;
mod common;
mod fast_mode;
mod vm_mode;
