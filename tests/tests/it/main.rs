//! The end-to-end suites, one binary: the real `hostctl` and `node-agent`
//! binaries with nodes in network namespaces, QEMU VMs and the Multipass
//! emulator. Each module was its own binary once; [`tests::suite`] still runs
//! the tests of one module at a time, as separate binaries did (they share
//! bridges, address ranges and the two cores).
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

mod bootstrap;
mod drills;
mod e2e;
mod etcd_snapshot;
mod faults;
mod local_provider;
mod metrics;
mod mirrors_step;
mod multipass_emulated;
mod node_config_compat;
mod preconditions;
mod provisioning;
mod qemu_vm;
mod soak;
mod terminal;
mod tracing;
