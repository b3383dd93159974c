//! What can stop the Kubernetes configuration from rendering. Every variant
//! names the cluster, node or file involved, because the caller is usually
//! `hostctl render` or `hostctl up` printing it to a person.

use crate::fsutil::WriteError;

/// A rendering failure. The topology crate has already validated the input,
/// so most variants mean a caller asked for a name the topology does not hold.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// The caller named a cluster the topology does not define.
    #[error("cluster {0} is not in the topology")]
    UnknownCluster(String),
    /// The caller named a node the topology does not define.
    #[error("node {0} is not in the topology")]
    UnknownNode(String),
    /// A cluster without a control plane cannot be initialised or joined.
    #[error("cluster {0} has no control-plane node")]
    NoControlPlane(String),
    /// A node without a resolved address: the topology was not resolved.
    #[error("node {0} has no resolved address (resolve the topology first)")]
    NoAddress(String),
    /// A cluster without a resolved MetalLB pool: the topology was not resolved.
    #[error("cluster {0} has no resolved MetalLB pool (resolve the topology first)")]
    NoPool(String),
    /// The control plane runs `kubeadm init`; a join config for it is a caller bug.
    #[error("node {0} is a control plane: it runs kubeadm init, not join")]
    JoinOfControlPlane(String),
    /// Cilium Cluster Mesh ids are 1..=255 and follow the topology's cluster order.
    #[error(
        "cluster {cluster} is number {position} in the topology; Cilium Cluster Mesh allows at most 255 clusters"
    )]
    ClusterIdOutOfRange {
        /// The cluster that has no valid id.
        cluster: String,
        /// Its 1-based position in the topology.
        position: usize,
    },
    /// kubeadm rejects a malformed bootstrap token only on the node, minutes later.
    #[error("bootstrap token for node {node} is not of the form [a-z0-9]{{6}}.[a-z0-9]{{16}}")]
    BadToken {
        /// The node the join config was for.
        node: String,
    },
    /// kubeadm refuses a discovery pin that is not `sha256:` + 64 hex digits.
    #[error("CA hash for node {node} is not sha256:<64 hex digits>: {hash}")]
    BadCaHash {
        /// The node the join config was for.
        node: String,
        /// The value that was given.
        hash: String,
    },
    /// The PKI lacks material the rendering needs (a cluster CA).
    /// A network policy names an address the topology cannot give.
    #[error("network policy: {0}")]
    NetworkPolicy(String),

    #[error("PKI: {0}")]
    Pki(#[from] certs::PkiError),
    /// The YAML emitter refused a document (should not happen for these types).
    #[error("cannot render {what} as YAML: {source}")]
    Yaml {
        /// Which document.
        what: String,
        /// The emitter's error.
        #[source]
        source: serde_saphyr::SerializeError,
    },
    /// Writing a rendered file failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// `hostctl render`'s failure: the Kubernetes configuration or an add-on.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Kubernetes(#[from] K8sError),
    #[error(transparent)]
    Addon(#[from] crate::addons::AddonError),
}

impl From<WriteError> for RenderError {
    fn from(e: WriteError) -> Self {
        RenderError::Kubernetes(e.into())
    }
}

impl From<certs::PkiError> for RenderError {
    fn from(e: certs::PkiError) -> Self {
        RenderError::Kubernetes(e.into())
    }
}

/// Shorthand for this module tree's results.
pub type Result<T, E = K8sError> = std::result::Result<T, E>;
