//! The Multipass emulator's own tests, one binary: its CLI contract, the fast
//! mode and the VM mode.

mod cli;
mod common;
mod fast_mode;
mod vm_mode;
