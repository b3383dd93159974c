//! Typed cloud-init user-data for hostctl nodes.
//!
//! cloud-init has exactly one job in hostctl: install the node agent, its
//! configuration and its systemd unit, pin the node's stable address, and
//! start the agent. Everything heavy runs in the agent, where progress and
//! failures are reported to the host; cloud-init itself runs against
//! Multipass's fixed launch timeouts and fails invisibly
//! (canonical/multipass#1039, #2327).
//!
//! The documents are typed models serialised with serde, never string
//! templates, so any value is quoted correctly and the set of cloud-init
//! modules in use is closed: [`CloudConfig`] has no field for packages,
//! users or shell scripts, and commands are [`Argv`] lists that cannot hold a
//! shell command line.
//!
//! Entry point: [`NodeUserData`] → [`CloudConfig`] → [`CloudConfig::render`].
//! A node's fixed address is a [`NodeAddress`]: on Multipass a second
//! address beside the default NIC's lease ([`LeaseNeighbour`]), rendered as
//! a netplan file inside the user-data; a [`StableAddress`] on a NIC of its
//! own renders the same way, or as the QEMU provider's NoCloud
//! `network-config`.
#![cfg_attr(
    test,
    allow(clippy::disallowed_methods, reason = "unit tests write fixtures")
)]
#![deny(missing_docs)]

mod command;
mod error;
mod model;
pub mod network;
pub mod node;
mod payload;
mod render;
pub mod systemd;

pub use command::Argv;
pub use error::Error;
pub use model::{CloudConfig, Encoding, FileMode, Hostname, Owner, WriteFile};
pub use network::{LeaseNeighbour, NetworkConfig, NodeAddress, StableAddress};
pub use node::NodeUserData;
pub use payload::AgentPayload;
pub use render::{CLOUD_CONFIG_HEADER, MULTIPASS_USER_DATA_LIMIT, ensure_fits};
pub use systemd::ServiceUnit;
