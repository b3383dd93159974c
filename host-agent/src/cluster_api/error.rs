//! Typed failures of the kube layer. Each names the cluster object or the
//! check it concerns, so an `up` log line is actionable on its own.

use std::time::Duration;

/// Anything that went wrong talking to a cluster's API server.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The topology or PKI cannot produce a kubeconfig for the cluster.
    #[error("cannot build the admin kubeconfig of cluster {cluster}: {reason}")]
    Kubeconfig { cluster: String, reason: String },
    /// kube-rs refused the kubeconfig (bad PEM, bad URL).
    #[error("cannot build a Kubernetes client for cluster {cluster}: {reason}")]
    Client { cluster: String, reason: String },
    /// The API server could not be reached at all (TLS, connection refused).
    #[error("{what}: the API server is unreachable: {reason}")]
    Unreachable { what: String, reason: String },
    /// A named check did not pass within its time limit; `detail` says
    /// what was still wrong at the last poll.
    #[error("check \"{check}\" timed out after {}s: {detail}", timeout.as_secs())]
    Timeout {
        check: &'static str,
        timeout: Duration,
        detail: String,
    },
    /// Server-side apply hit a field owned by another field manager.
    #[error("apply {object}: conflict: {message}")]
    Conflict { object: String, message: String },
    /// The API server answered with an error Status.
    #[error("apply {object}: {status} {reason}: {message}")]
    Api {
        object: String,
        status: u16,
        reason: String,
        message: String,
    },
    /// A YAML document could not be read as a Kubernetes object.
    #[error("document {index} of {source_name}: {reason}")]
    Decode {
        source_name: String,
        index: usize,
        reason: String,
    },
    /// A document's kind is not in the static table of kinds hostctl applies.
    #[error(
        "document {index} of {source_name}: hostctl does not apply {api_version}/{kind} (not in cluster_api::resources)"
    )]
    UnknownKind {
        source_name: String,
        index: usize,
        api_version: String,
        kind: String,
    },
    /// hostctl's own renderer failed for the cluster.
    #[error("cannot render the manifests of cluster {cluster}: {reason}")]
    Render { cluster: String, reason: String },
    /// Fetching an upstream manifest (the Gateway API CRDs) failed.
    #[error("cannot fetch {what}: {reason}")]
    Fetch { what: String, reason: String },
    /// A bootstrap token could not be turned into its Secret.
    #[error("bootstrap token: {0}")]
    Token(String),
}
