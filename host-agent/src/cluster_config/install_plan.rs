//! The ordered add-on steps for one cluster (`clusters/<cluster>/install-plan.yaml`):
//! which pinned upstream artefacts are applied, how, and in what order. It
//! is the reviewable reference to what is *not* vendored (the Gateway API
//! CRDs, MetalLB's manifest); the installer that executes it
//! ([`crate::cluster_api::install`], run by the `cni` and `addons` steps)
//! reads the same constants from [`super::versions`].

use super::error::Result;
use super::manifests;
use super::versions::*;
use super::yaml;
use serde::Serialize;

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallPlan {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub cluster: String,
    pub steps: Vec<Step>,
}

/// One step; exactly one of `apply`/`helm` is set.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<Apply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<Helm>,
}

/// `kubectl apply` of a URL or of rendered files.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Apply {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Server-side apply: required for the Gateway API v1.4 CRDs, harmless elsewhere.
    pub server_side: bool,
}

/// A Helm CLI install.
#[derive(Debug, Clone, Serialize)]
pub struct Helm {
    pub repo: &'static str,
    pub chart: &'static str,
    pub namespace: &'static str,
    pub values: &'static str,
}

/// The plan for `cluster`: after `kubeadm init`, Gateway API CRDs, then
/// Cilium (nodes stay NotReady until it runs), then MetalLB, then the
/// rendered manifests; workers join afterwards.
pub fn plan(cluster: &str, manifest_files: &[String]) -> InstallPlan {
    let url = |url| Apply {
        url: Some(url),
        files: Vec::new(),
        server_side: true,
    };
    InstallPlan {
        api_version: "hostctl.dev/v1alpha1",
        kind: "InstallPlan",
        cluster: cluster.to_owned(),
        steps: vec![
            Step {
                name: "gateway-api-crds",
                version: Some(GATEWAY_API_VERSION),
                apply: Some(url(GATEWAY_API_CRDS_URL)),
                helm: None,
            },
            Step {
                name: "cilium",
                version: Some(CILIUM_CHART_VERSION),
                apply: None,
                helm: Some(Helm {
                    repo: CILIUM_CHART_REPO,
                    chart: CILIUM_CHART,
                    namespace: CILIUM_NAMESPACE,
                    values: "cilium-values.yaml",
                }),
            },
            Step {
                name: "metallb",
                version: Some(METALLB_VERSION),
                apply: Some(url(METALLB_MANIFEST_URL)),
                helm: None,
            },
            Step {
                name: "manifests",
                version: None,
                apply: Some(Apply {
                    url: None,
                    files: manifest_files
                        .iter()
                        .map(|f| format!("manifests/{f}"))
                        .collect(),
                    server_side: true,
                }),
                helm: None,
            },
        ],
    }
}

/// The plan as the YAML file `hostctl render` writes.
pub fn plan_yaml(cluster: &str, manifest_files: &[String]) -> Result<String> {
    yaml::documents(
        "InstallPlan",
        &format!(
            "Add-on install order for cluster {cluster}, after kubeadm init on the control plane.\n\
             Upstream artefacts are referenced by pinned URL, not vendored. The PSA file\n\
             admission-config.yaml is placed before kubeadm init ({}).",
            manifests::psa::ADMISSION_CONFIG_PATH
        ),
        &[plan(cluster, manifest_files)],
    )
}
