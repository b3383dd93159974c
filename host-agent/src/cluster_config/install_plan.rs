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

/// One step: a Helm install, an apply, or (add-ons) a chart and then
/// its objects.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Steps of this plan that must be done (and ready) first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<Helm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<Apply>,
    /// What hostctl waits for before the step counts as done.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ready: Vec<String>,
}

impl Step {
    fn new(name: &str, version: Option<&str>) -> Step {
        Step {
            name: name.to_owned(),
            version: version.map(str::to_owned),
            after: Vec::new(),
            helm: None,
            apply: None,
            ready: Vec::new(),
        }
    }
}

/// `kubectl apply` of a URL or of rendered files.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Apply {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Server-side apply: required for the Gateway API v1.4 CRDs, harmless elsewhere.
    pub server_side: bool,
}

/// A Helm CLI install.
#[derive(Debug, Clone, Serialize)]
pub struct Helm {
    pub repo: String,
    pub chart: String,
    pub namespace: String,
    pub values: String,
}

/// The plan for `cluster`: after `kubeadm init`, Gateway API CRDs, then
/// Cilium (nodes stay NotReady until it runs), then MetalLB, then the
/// rendered manifests; workers join afterwards; then `addons`, the
/// catalogue's steps for this cluster (see [`crate::addons::plan`]).
pub fn plan(cluster: &str, manifest_files: &[String], addons: Vec<Step>) -> InstallPlan {
    let url = |url: &str| Apply {
        url: Some(url.to_owned()),
        files: Vec::new(),
        server_side: true,
    };
    let mut steps = vec![
        Step {
            apply: Some(url(GATEWAY_API_CRDS_URL)),
            ..Step::new("gateway-api-crds", Some(GATEWAY_API_VERSION))
        },
        Step {
            helm: Some(Helm {
                repo: CILIUM_CHART_REPO.to_owned(),
                chart: CILIUM_CHART.to_owned(),
                namespace: CILIUM_NAMESPACE.to_owned(),
                values: "cilium-values.yaml".to_owned(),
            }),
            ..Step::new("cilium", Some(CILIUM_CHART_VERSION))
        },
        Step {
            apply: Some(url(METALLB_MANIFEST_URL)),
            ..Step::new("metallb", Some(METALLB_VERSION))
        },
        Step {
            apply: Some(Apply {
                url: None,
                files: manifest_files
                    .iter()
                    .map(|f| format!("manifests/{f}"))
                    .collect(),
                server_side: true,
            }),
            ..Step::new("manifests", None)
        },
    ];
    steps.extend(addons);
    InstallPlan {
        api_version: "hostctl.dev/v1alpha1",
        kind: "InstallPlan",
        cluster: cluster.to_owned(),
        steps,
    }
}

/// The plan as the YAML file `hostctl render` writes.
pub fn plan_yaml(cluster: &str, manifest_files: &[String], addons: Vec<Step>) -> Result<String> {
    yaml::documents(
        "InstallPlan",
        &format!(
            "Add-on install order for cluster {cluster}, after kubeadm init on the control plane.\n\
             Upstream artefacts are referenced by pinned URL, not vendored. The PSA file\n\
             admission-config.yaml is placed before kubeadm init ({}).",
            manifests::psa::ADMISSION_CONFIG_PATH
        ),
        &[plan(cluster, manifest_files, addons)],
    )
}
