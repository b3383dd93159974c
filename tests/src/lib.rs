//! Test harness for the end-to-end suites in `tests/tests/it/`.
//!
//! The suites run the real `hostctl` and `node-agent` binaries with the local
//! provider: every node is a node agent in its own network namespace. They
//! need root and iproute2; without them each test prints `SKIP` and passes
//! (CI runs as root, so there they run for real).
//!
//! The binaries are not built by `cargo test` for this crate: run
//! `cargo build -p host-agent -p node-agent` first (`make test` and
//! `.ci/run` do). They are looked up beside the test executable's target
//! directory, or at `$HOSTCTL_BIN` / `$HOSTCTL_NODE_AGENT`.
//!
//! - [`bins`]: finding the binaries.
//! - [`env`]: one isolated environment per test (home, node network,
//!   topology), always cleaned up.
//! - [`poll`]: bounded waits with clear failure messages.
//! - [`qemu`]: the same, with QEMU VMs booted from the test image, and
//!   [`apt_mirror`]: a flat apt repository those VMs install from.
//! - [`kube_api`]: the stand-in Kubernetes API server (from `test-support`)
//!   and [`bootstrap`]: the stand-ins and the API server in a control
//!   plane's namespace for the full-graph suite.
//! - [`suite`]: the suites are modules of one test binary; a test of one
//!   suite never overlaps a test of another (as separate binaries never did).
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

pub mod apt_mirror;
pub mod bins;
pub mod bootstrap;
pub mod emulated;
pub mod env;
pub mod qemu;
pub mod suite;

pub use test_support::{kube_api, poll};

pub use env::LocalEnv;

/// True when this process may create network namespaces; otherwise prints
/// why the calling test is skipped.
pub fn can_run_netns(test: &str) -> bool {
    suite::enter();
    if !rustix::process::geteuid().is_root() {
        return skip(test, "needs root (network namespaces); CI runs it as root");
    }
    let has_ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if !has_ip {
        return skip(test, "needs `ip` (install iproute2)");
    }
    true
}

pub use test_support::skip;

/// Installs the ring crypto provider once, before any TLS use.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
