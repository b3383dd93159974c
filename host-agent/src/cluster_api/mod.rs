//! The host's side of every running cluster, through kube-rs: an admin
//! client minted from the cluster CA, the "nodes Ready" and API health
//! checks, server-side apply of rendered manifests, and the add-on sequence
//! the orchestrator runs after `kubeadm init`. Rendering stays in
//! [`crate::cluster_config`]; this module only talks to API servers.
//!
//! Module map: [`kubeconfig`] (minting per cluster), [`merge`] (into a
//! user's kubeconfig file, as kind and k3d do), [`client`], [`ready`],
//! [`resources`] (the static kind table), [`apply`], [`install`] (add-on
//! steps), [`bootstrap`] (join tokens as Secrets), [`health`] (for
//! `hostctl status`), [`read`] (bounded GETs for `status` and `verify`),
//! [`error`].

pub mod apply;
pub mod bootstrap;
pub mod client;
pub mod error;
pub mod health;
pub mod install;
pub mod kubeconfig;
pub mod merge;
pub mod read;
pub mod ready;
pub mod resources;

pub use error::KubeError;
pub use health::{ClusterHealth, cluster_health};
