//! Kubernetes configuration rendered on the host: kubeadm configs, Cilium
//! Helm values and the add-on manifests of every cluster, from the resolved
//! topology (and the PKI when it exists). The host is the one place of
//! truth; node agents apply these bytes, and `hostctl render` writes them
//! for review ([`render_all`] has the layout).
//!
//! Module map: [`kubeadm`] (init/join), [`kubelet`], [`cilium`],
//! [`manifests`] (PSA, local-path, MetalLB), [`install_plan`] (add-on order
//! and pinned upstream URLs), [`versions`] (every pinned version),
//! [`cluster`] (per-cluster facts), [`error`].

pub mod cilium;
pub mod cluster;
pub mod error;
pub mod install_plan;
pub mod kubeadm;
pub mod kubelet;
pub mod manifests;
mod render;
pub mod versions;
pub(crate) mod yaml;

pub use error::{K8sError, RenderError, Result};
pub use render::render_all;
