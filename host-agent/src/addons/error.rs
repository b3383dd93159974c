//! What can go wrong rendering or installing an add-on. Sources are boxed:
//! the error travels through every render and install result.

use crate::cluster_api::KubeError;
use crate::helm::HelmError;

/// An add-on could not be rendered, installed or checked.
#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    /// The topology lacks something an add-on needs (a cluster, an address).
    #[error("add-on {addon}: {reason}")]
    Topology { addon: String, reason: String },
    /// Credentials could not be minted from a cluster's CA.
    #[error("add-on {addon}: cannot mint credentials for cluster {cluster}")]
    Credentials {
        addon: String,
        cluster: String,
        #[source]
        source: Box<certs::PkiError>,
    },
    /// A rendered value or object could not be written as YAML/JSON.
    #[error("add-on {addon}: cannot serialise {what}")]
    Serialise {
        addon: String,
        what: String,
        #[source]
        source: Box<serde_json::Error>,
    },
    /// The rendered files could not be written.
    #[error(transparent)]
    Write(#[from] crate::fsutil::WriteError),
    /// The YAML emitter refused a document.
    #[error(transparent)]
    Yaml(#[from] crate::cluster_config::K8sError),
    /// `helm upgrade --install` failed.
    #[error("add-on {addon}: helm")]
    Helm {
        addon: String,
        #[source]
        source: Box<HelmError>,
    },
    /// Its chart is neither in the registry mirror nor in the cache and
    /// could not be fetched.
    #[error("add-on {addon}: its chart")]
    Chart {
        addon: String,
        #[source]
        source: Box<crate::charts::ChartError>,
    },
    /// Applying its objects or reading its readiness failed.
    #[error("add-on {addon}: {what}")]
    Kube {
        addon: String,
        what: String,
        #[source]
        source: Box<KubeError>,
    },
    /// It did not become ready in time; `waiting` says for what.
    #[error("add-on {addon} is not ready after {seconds} s: {waiting}")]
    NotReady {
        addon: String,
        seconds: u64,
        waiting: String,
    },
}
