//! The hostctl topology: which clusters and VMs to build, read from a YAML
//! file, checked thoroughly, and resolved to concrete addresses.
//!
//! * [`default_topology`] / [`default_yaml`]: the seed specification's
//!   environment (what `hostctl init` writes).
//! * [`parse`] / [`load_file`]: read and check a file; every problem is
//!   reported at once, with file, line, column, field path and a fix.
//! * [`Topology::resolve`]: place host numbers in the subnet the provider
//!   really uses (Multipass no longer hands out 192.168.64.0/24); see the
//!   crate README for the addressing rule.
//! * [`check_host_capacity`]: warn when the VMs need more memory than the host has.
#![cfg_attr(
    test,
    allow(clippy::disallowed_methods, reason = "unit tests write fixtures")
)]
#![deny(missing_docs)]

mod address;
mod backups;
mod decode;
mod defaults;
mod diagnostic;
mod emit;
mod load;
mod mirror;
mod model;
mod observability;
mod report;
mod resolve;
mod suggest;
mod telemetry;
mod tree;
mod units;
mod validate;
mod version;

pub use address::{Address, PlaceError};
pub use backups::Backups;
pub use defaults::{
    DEFAULT_HOST_AGENT, DEFAULT_KUBERNETES_VERSION, default_topology, default_yaml,
};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use load::{Loaded, load_file, parse};
pub use mirror::{MirrorUrl, MirrorUrlError, Mirrors};
pub use model::{
    API_VERSION, Addressing, Cluster, ClusterRole, HostAgent, KIND, Network, Node, NodeRole, Pool,
    Topology,
};
pub use observability::{K8sgpt, LlmBackend, Observability};
pub use report::SourceMap;
pub use resolve::{IpRange, Resolved};
pub use telemetry::Telemetry;
pub use tree::Pos;
pub use units::{ByteSize, SizeError};
pub use validate::check_host_capacity;
pub use version::{KubeVersion, TESTED_MINOR, VersionError};
