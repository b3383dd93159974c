//! Admin kubeconfigs minted from each cluster's CA: the host never copies
//! `/etc/kubernetes/admin.conf` off a node, it signs its own client
//! certificate (`certs::ClusterPki::mint_admin_kubeconfig`) for the API
//! endpoint the topology fixes, so a kubeconfig exists as soon as the PKI
//! does and survives node rebuilds.

use super::error::KubeError;
use crate::cluster_config::cluster::ClusterView;
use certs::Pki;
use topology::Resolved;

/// The API server URL of `cluster`: its control plane's stable address.
pub fn server_url(resolved: &Resolved, cluster: &str) -> Result<String, KubeError> {
    let view = ClusterView::new(resolved, cluster).map_err(|e| KubeError::Kubeconfig {
        cluster: cluster.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(format!("https://{}", view.api_endpoint()))
}

/// A fresh admin kubeconfig (YAML) for `cluster`. The cluster entry and
/// the context are both named after the cluster (`mgmt`, `app1`, `app2`),
/// the user `<cluster>-admin`, like kind's `kind-<name>` convention minus
/// the prefix the spec does not want.
pub fn admin_kubeconfig(
    pki: &Pki,
    resolved: &Resolved,
    cluster: &str,
) -> Result<String, KubeError> {
    let err = |reason: String| KubeError::Kubeconfig {
        cluster: cluster.to_owned(),
        reason,
    };
    let url = server_url(resolved, cluster)?;
    let cluster_pki = pki.cluster(cluster).map_err(|e| err(e.to_string()))?;
    cluster_pki
        .mint_admin_kubeconfig(cluster, &url, cluster)
        .map_err(|e| err(e.to_string()))
}
