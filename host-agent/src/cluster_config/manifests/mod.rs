//! The plain manifests each cluster gets after its CNI is up
//! (`DIR/clusters/<cluster>/manifests/`), one file per concern, numbered in
//! apply order: PSA namespaces, the local-path provisioner, its
//! StorageClasses, MetalLB's pools, the default-deny network policy. The Gateway API CRDs and MetalLB itself
//! are applied from their pinned upstream URLs (see
//! [`crate::cluster_config::versions`] and `install-plan.yaml`), not vendored here.

pub mod local_path;
pub mod metallb;
pub mod network_policy;
pub mod psa;

use super::cluster::ClusterView;
use super::error::Result;
use super::yaml;
use topology::Resolved;

/// File name of the exempt namespaces.
pub const NAMESPACES_FILE: &str = "00-namespaces.yaml";
/// File name of the local-path provisioner.
pub const LOCAL_PATH_FILE: &str = "10-local-path-provisioner.yaml";
/// File name of the StorageClasses.
pub const STORAGE_CLASSES_FILE: &str = "20-storageclasses.yaml";
/// File name of the MetalLB pools (needs MetalLB's CRDs applied first).
pub const METALLB_FILE: &str = "30-metallb.yaml";
/// File name of the default-deny network policy (needs Cilium's CRDs).
pub const NETWORK_POLICY_FILE: &str = "40-network-policy.yaml";

/// The manifests of `cluster` as `(file name, YAML)` pairs in apply order;
/// why pairs and not a directory? The node agent applies them over its
/// channel, and `hostctl render` writes the same bytes for review.
pub fn for_cluster(resolved: &Resolved, cluster: &str) -> Result<Vec<(String, String)>> {
    let view = ClusterView::new(resolved, cluster)?;
    let name = view.name();
    let namespaces = yaml::documents(
        "Namespace",
        &format!(
            "Namespaces exempt from Pod Security Admission in cluster {name} (SPEC §8).\n\
             The cluster-wide defaults live in ../admission-config.yaml."
        ),
        &psa::exempt_namespaces(),
    )?;
    let local_path = local_path::provisioner_yaml(&format!(
        "local-path provisioner {} for cluster {name} (SPEC §7).",
        super::versions::LOCAL_PATH_VERSION
    ))?;
    let classes = yaml::documents(
        "StorageClass",
        &format!("StorageClasses of cluster {name} (SPEC §7)."),
        &local_path::storage_classes(),
    )?;
    let metallb = metallb::for_cluster(&view);
    let mut docs = metallb
        .pools
        .iter()
        .map(|p| yaml::document("IPAddressPool", p))
        .collect::<Result<Vec<_>>>()?;
    docs.push(yaml::document("L2Advertisement", &metallb.advertisement)?);
    let metallb_yaml = yaml::file(
        &format!(
            "MetalLB L2 configuration of cluster {name}: the topology's pool {}.\n\
             Its first address is reserved for the clustermesh-apiserver.",
            view.pool
        ),
        &docs,
    );
    Ok(vec![
        (NAMESPACES_FILE.to_owned(), namespaces),
        (LOCAL_PATH_FILE.to_owned(), local_path),
        (STORAGE_CLASSES_FILE.to_owned(), classes),
        (METALLB_FILE.to_owned(), metallb_yaml),
        (
            NETWORK_POLICY_FILE.to_owned(),
            network_policy::file(resolved, name)?,
        ),
    ])
}

/// The API server's admission configuration (`admission-config.yaml`).
pub fn admission_config() -> Result<String> {
    yaml::documents(
        "AdmissionConfiguration",
        &format!(
            "Pod Security Admission defaults (SPEC §8). The node agent writes this file to\n\
             {} on the control plane before kubeadm init.",
            psa::ADMISSION_CONFIG_PATH
        ),
        &[psa::admission_configuration()],
    )
}
