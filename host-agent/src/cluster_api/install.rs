//! The per-cluster add-on steps after `kubeadm init`, as plain functions
//! the orchestrator calls in this order (k8s-bootstrap §5/§7; nodes stay
//! NotReady until Cilium runs):
//! 1. [`install_gateway_api_crds`] (server-side; before Cilium, so the chart
//!    creates the `cilium` GatewayClass),
//! 2. [`install_cilium`] (Helm CLI, values rendered from the topology),
//! 3. [`super::ready::wait_nodes_ready`],
//! 4. [`install_metallb`] (its native manifest, pinned URL),
//! 5. [`apply_base_manifests`] (PSA namespaces, local-path, StorageClasses,
//!    MetalLB pools; the pools need MetalLB's webhook up, so the caller
//!    retries step 5 on a 500 from the webhook).
//!
//! Upstream files are not vendored; [`ManifestSource`] makes where they
//! come from injectable (tests use a directory of YAML).

use super::apply::{ApplyOptions, apply_yaml};
use super::error::KubeError;
use crate::cluster_config::versions;
use crate::exec::{Cmd, RealRunner, Runner as _};
use crate::helm::{Helm, HelmError, UpgradeInstall, private_file};
use async_trait::async_trait;
use certs::Pki;
use std::path::PathBuf;
use std::time::Duration;
use topology::Resolved;

/// Where an upstream manifest comes from.
#[async_trait]
pub trait ManifestSource: Send + Sync {
    /// A name for errors, and the YAML.
    async fn fetch(&self) -> Result<(String, String), KubeError>;
}

/// Production source: the pinned URL, downloaded with `curl -fsSL` (always
/// present on macOS and Ubuntu; keeps an HTTP client stack out of the host
/// binary for two downloads).
#[derive(Debug, Clone)]
pub struct PinnedUrl(pub &'static str);

/// The Gateway API CRDs of [`versions::GATEWAY_API_VERSION`].
pub const GATEWAY_API_CRDS: PinnedUrl = PinnedUrl(versions::GATEWAY_API_CRDS_URL);
/// MetalLB's native manifest of [`versions::METALLB_VERSION`].
pub const METALLB_MANIFEST: PinnedUrl = PinnedUrl(versions::METALLB_MANIFEST_URL);

#[async_trait]
impl ManifestSource for PinnedUrl {
    async fn fetch(&self) -> Result<(String, String), KubeError> {
        let err = |reason: String| KubeError::Fetch {
            what: self.0.to_owned(),
            reason,
        };
        // KubeError::Fetch keeps text only, so the command's error (which
        // names curl and ends with its stderr) becomes the reason.
        let curl = Cmd::new("curl").args(["-fsSL", "--max-time", "120", self.0]);
        let out = RealRunner
            .run(&curl)
            .await
            .map_err(|e| err(e.to_string()))?;
        let text = String::from_utf8(out.stdout).map_err(|e| err(e.to_string()))?;
        Ok((self.0.to_owned(), text))
    }
}

/// Every `*.yaml` file of a directory, in name order, as one stream (for
/// tests and air-gapped use).
#[derive(Debug, Clone)]
pub struct YamlDir(pub PathBuf);

#[async_trait]
impl ManifestSource for YamlDir {
    async fn fetch(&self) -> Result<(String, String), KubeError> {
        let err = |reason: String| KubeError::Fetch {
            what: self.0.display().to_string(),
            reason,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .map_err(|e| err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut text = String::new();
        for f in files {
            text.push_str(
                &std::fs::read_to_string(&f).map_err(|e| err(format!("{}: {e}", f.display())))?,
            );
            text.push_str("\n---\n");
        }
        Ok((self.0.display().to_string(), text))
    }
}

/// Step 1: the Gateway API CRDs, server-side.
pub async fn install_gateway_api_crds(
    client: &kube::Client,
    source: &dyn ManifestSource,
) -> Result<Vec<String>, KubeError> {
    let (name, yaml) = source.fetch().await?;
    apply_yaml(client, &name, &yaml, ApplyOptions::default()).await
}

/// Step 4: MetalLB itself (CRDs, controller, speaker), server-side.
pub async fn install_metallb(
    client: &kube::Client,
    source: &dyn ManifestSource,
) -> Result<Vec<String>, KubeError> {
    let (name, yaml) = source.fetch().await?;
    apply_yaml(client, &name, &yaml, ApplyOptions::default()).await
}

/// Step 5: hostctl's rendered manifests of `cluster`, file by file in
/// their numbered order.
pub async fn apply_base_manifests(
    client: &kube::Client,
    resolved: &Resolved,
    cluster: &str,
) -> Result<Vec<String>, KubeError> {
    let files = crate::cluster_config::manifests::for_cluster(resolved, cluster).map_err(|e| {
        KubeError::Render {
            cluster: cluster.to_owned(),
            reason: e.to_string(),
        }
    })?;
    let mut applied = Vec::new();
    for (file, yaml) in files {
        applied.extend(apply_yaml(client, &file, &yaml, ApplyOptions::default()).await?);
    }
    Ok(applied)
}

/// How long `helm --wait` may take for Cilium (image pulls on a fresh VM).
pub const CILIUM_TIMEOUT: Duration = Duration::from_secs(600);

/// Step 2: `helm upgrade --install cilium` with the chart pinned in
/// [`versions`] ([`crate::charts::CILIUM`], from the registry mirror or the
/// verified chart cache: [`crate::charts::ChartStore::source`]) and values rendered from the topology (with the shared
/// Cluster Mesh CA). `kubeconfig` is the minted admin kubeconfig; it and
/// the values (which hold the mesh CA key) live in 0600 temporary files
/// for the duration of the call only. Returns helm's output.
pub async fn install_cilium(
    helm: &dyn Helm,
    charts: &crate::charts::ChartStore,
    pki: &Pki,
    resolved: &Resolved,
    cluster: &str,
    kubeconfig: &str,
    timeout: Duration,
) -> Result<String, HelmError> {
    let mesh_ca = pki.clustermesh_ca();
    let values =
        crate::cluster_config::cilium::values(resolved, cluster, Some(&mesh_ca)).map_err(|e| {
            HelmError::Values {
                release: "cilium".to_owned(),
                reason: e.to_string(),
            }
        })?;
    let values_file = private_file("values", &values)?;
    let kubeconfig_file = private_file("kubeconfig", kubeconfig)?;
    let chart = crate::charts::CILIUM;
    let source = charts
        .source(helm, &chart)
        .await
        .map_err(|e| HelmError::Chart {
            release: "cilium".to_owned(),
            source: Box::new(e),
        })?;
    helm.upgrade_install(&UpgradeInstall {
        release: "cilium",
        chart: &source.reference,
        version: chart.version,
        registry: &source.registry,
        namespace: versions::CILIUM_NAMESPACE,
        values_file: values_file.path(),
        kubeconfig_file: kubeconfig_file.path(),
        wait: true,
        timeout,
    })
    .await
}
