//! Which cluster an API server is: the recoveries that write to a
//! cluster refuse one whose API server is another cluster's (the
//! topology's address reaching the wrong machine) before they touch it.

use serde_json::Value;

/// Why an API server is not (or cannot be shown to be) the cluster asked.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The API server the topology's address reaches is another cluster's.
    #[error(
        "the API server at {server} is cluster {found:?} (kube-system/kubeadm-config, \
         ClusterConfiguration clusterName), not {cluster:?}: nothing was changed. The \
         topology's address for {cluster} reaches another cluster; check the addresses \
         (`hostctl status`), or run the recovery for {found}"
    )]
    WrongCluster {
        server: String,
        cluster: String,
        found: String,
    },
    /// The cluster's identity could not be read.
    #[error(
        "cannot tell which cluster the API server at {server} is: {reason}; nothing was \
         changed (kubeadm writes kube-system/kubeadm-config when it creates the cluster)"
    )]
    UnknownCluster { server: String, reason: String },
}

/// Where kubeadm keeps the cluster's configuration.
pub const KUBEADM_CONFIG: &str = "/api/v1/namespaces/kube-system/configmaps/kubeadm-config";

/// The wrong-cluster rule: the cluster name kubeadm stored in
/// kube-system/kubeadm-config (hostctl's kubeadm configuration sets
/// `clusterName` to the topology's name).
pub fn cluster_name(config_map: &Value) -> Result<String, String> {
    let text = config_map["data"]["ClusterConfiguration"]
        .as_str()
        .ok_or("kubeadm-config has no data.ClusterConfiguration")?;
    let config: Value = serde_saphyr::from_str(text)
        .map_err(|e| format!("its ClusterConfiguration is not YAML: {e}"))?;
    config["clusterName"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "its ClusterConfiguration has no clusterName".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cluster_name_is_kubeadms() {
        let cm = json!({"data": {"ClusterConfiguration":
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: app1\n"}});
        assert_eq!(cluster_name(&cm).unwrap(), "app1");
        assert!(cluster_name(&json!({"data": {}})).is_err());
        let nameless = json!({"data": {"ClusterConfiguration": "kind: ClusterConfiguration\n"}});
        assert!(cluster_name(&nameless).unwrap_err().contains("clusterName"));
    }
}
