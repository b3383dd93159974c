//! What the workspace's tests and benchmarks share, in one crate instead of
//! files included by `#[path]` into several test binaries:
//!
//! - [`etcd`]: a real etcd (Debian's `etcd-server`) with TLS and kubeadm's
//!   file layout, killed on drop.
//! - [`kube_api`]: the STAND-IN Kubernetes API server (real TLS, the calls
//!   hostctl makes, every request recorded).
//! - [`host_daemon`]: a temporary home with a real PKI, an in-process host
//!   daemon on loopback, simulated node agents.
//! - [`node_harness`]: the STAND-IN host agent node-agent's tests and
//!   benchmarks run a node agent against.
//! - [`metrics`]: one mutual-TLS scrape of an agent's `/metrics`.
//! - [`poll`]: bounded waits that say what they waited for.
//! - [`openbao`]: a real OpenBao (Vault-API) server on loopback.
//! - [`garage`]: the real Garage object store's binary.
//! - [`skip`]: the one way a test skips, a failure where CI requires it.
//!
//! Only tests and benchmarks depend on this crate.
#![allow(
    clippy::disallowed_methods,
    reason = "tests write fixtures and run stand-ins"
)]

pub mod etcd;
pub mod garage;
pub mod host_daemon;
pub mod kube_api;
pub mod metrics;
pub mod node_harness;
pub mod openbao;
pub mod poll;
pub mod skip;

pub use skip::skip;
