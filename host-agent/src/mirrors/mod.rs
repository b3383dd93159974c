//! The registry and package mirrors hostctl runs on the host when the
//! topology says `mirrors: { managed: true }` (spec §2 "external services":
//! Harbor :8443 and Nexus :8081 in Docker on the host; docs/mirrors.md).
//!
//! - [`upstreams`]: what is mirrored — one Harbor proxy-cache project per
//!   upstream registry, one Nexus apt proxy per package source — and how a
//!   node is pointed at each.
//! - [`nodes`]: the prerequisites request's mirror fields for managed
//!   mirrors (containerd `hosts.toml` per upstream, apt through Nexus).
//! - [`layout`]: the files under `$HOSTCTL_HOME/mirrors`.
//! - [`compose`]: the two compose projects and Harbor's `harbor.yml`.
//! - [`http`]: the narrow API interface and its hyper client;
//!   [`harbor`] and [`nexus`] configure each through it.
//! - [`docker`]: the host's Docker behind a narrow trait (real CLI).
//! - [`secrets`]: generated credentials (0600) and Harbor's lab-signed pair.
//! - [`service`]: `mirrors up|status|down`.

pub mod compose;
pub mod docker;
pub mod error;
pub mod harbor;
pub mod http;
pub mod layout;
pub mod nexus;
pub mod nodes;
pub mod secrets;
pub mod service;
pub mod upstreams;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The lab root's certificate under `$HOSTCTL_HOME` (`certs` keeps it in
/// `pki/lab/`): what signed Harbor's certificate, so what helm and the
/// nodes trust for it.
pub fn lab_ca_file(home: &Path) -> PathBuf {
    home.join("pki/lab/ca.crt")
}

/// Harbor's HTTPS port on the host (spec §2).
pub const HARBOR_PORT: u16 = 8443;
/// Nexus's HTTP port on the host (spec §2).
pub const NEXUS_PORT: u16 = 8081;

/// Where the managed mirrors answer, as the nodes (and the host) reach
/// them: the host's address on the node network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub host: Ipv4Addr,
}

impl Endpoints {
    /// `https://<host>:8443`: Harbor's registry and API.
    pub fn harbor(&self) -> String {
        format!("https://{}:{HARBOR_PORT}", self.host)
    }

    /// `http://<host>:8081`: Nexus's repositories and REST API.
    pub fn nexus(&self) -> String {
        format!("http://{}:{NEXUS_PORT}", self.host)
    }
}
