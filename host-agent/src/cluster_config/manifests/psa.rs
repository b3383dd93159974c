//! Pod Security Admission as the spec sets it (SPEC §8): every namespace
//! defaults to enforce=baseline with audit and warn at restricted, and the
//! spec's four namespaces are exempt.
//!
//! The defaults cannot be a namespace label (they must hold for namespaces
//! created later), so they go in the API server's `AdmissionConfiguration`,
//! rendered as `clusters/<cluster>/admission-config.yaml`, placed by the node
//! agent at [`ADMISSION_CONFIG_PATH`] and passed to the API server by the
//! kubeadm ClusterConfiguration (`admission-control-config-file` plus a
//! read-only hostPath mount). The exempt namespaces are also rendered as
//! `Namespace` objects labelled privileged, so `kubectl get ns --show-labels`
//! tells the same story as the API server's file.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use std::collections::BTreeMap;

/// The directory mounted into the API server pod.
pub const ADMISSION_CONFIG_DIR: &str = "/etc/kubernetes/admission";
/// The file the API server reads its admission plugin configuration from.
pub const ADMISSION_CONFIG_PATH: &str = "/etc/kubernetes/admission/admission-config.yaml";

/// Default level for pods that are not told otherwise (SPEC §8).
pub const DEFAULT_ENFORCE: &str = "baseline";
/// Audit and warn levels: show what `restricted` would refuse without refusing it.
pub const DEFAULT_AUDIT_WARN: &str = "restricted";
/// Namespaces the spec exempts: system components, Cilium, node exporter
/// (host namespaces) and Vault (IPC_LOCK).
pub const EXEMPT_NAMESPACES: [&str; 4] = ["kube-system", "cilium-system", "monitoring", "vault"];

/// The `apiserver.config.k8s.io/v1` AdmissionConfiguration document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionConfiguration {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plugins: Vec<AdmissionPlugin>,
}

/// One admission plugin's inline configuration.
#[derive(Debug, Clone, Serialize)]
pub struct AdmissionPlugin {
    pub name: &'static str,
    pub configuration: PodSecurityConfiguration,
}

/// `pod-security.admission.config.k8s.io/v1` PodSecurityConfiguration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityConfiguration {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub defaults: PodSecurityDefaults,
    pub exemptions: PodSecurityExemptions,
}

/// Cluster-wide levels; versions pinned to `latest` so an upgrade tightens
/// them with the Kubernetes release rather than freezing an old policy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PodSecurityDefaults {
    pub enforce: &'static str,
    pub enforce_version: &'static str,
    pub audit: &'static str,
    pub audit_version: &'static str,
    pub warn: &'static str,
    pub warn_version: &'static str,
}

/// Who is not evaluated at all.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityExemptions {
    pub usernames: Vec<String>,
    pub runtime_classes: Vec<String>,
    pub namespaces: Vec<String>,
}

/// The API server's admission configuration (same for every cluster).
pub fn admission_configuration() -> AdmissionConfiguration {
    AdmissionConfiguration {
        api_version: "apiserver.config.k8s.io/v1",
        kind: "AdmissionConfiguration",
        plugins: vec![AdmissionPlugin {
            name: "PodSecurity",
            configuration: PodSecurityConfiguration {
                api_version: "pod-security.admission.config.k8s.io/v1",
                kind: "PodSecurityConfiguration",
                defaults: PodSecurityDefaults {
                    enforce: DEFAULT_ENFORCE,
                    enforce_version: "latest",
                    audit: DEFAULT_AUDIT_WARN,
                    audit_version: "latest",
                    warn: DEFAULT_AUDIT_WARN,
                    warn_version: "latest",
                },
                exemptions: PodSecurityExemptions {
                    usernames: Vec::new(),
                    runtime_classes: Vec::new(),
                    namespaces: EXEMPT_NAMESPACES.iter().map(|s| s.to_string()).collect(),
                },
            },
        }],
    }
}

/// A namespace whose pods may use host access. Used for the exempt
/// namespaces and for add-ons whose pods need hostPath or host networking
/// (local-path's helper pods), which `baseline` would refuse.
pub fn privileged_namespace(name: &str) -> Namespace {
    let labels: BTreeMap<String, String> = ["enforce", "audit", "warn"]
        .iter()
        .map(|mode| {
            (
                format!("pod-security.kubernetes.io/{mode}"),
                "privileged".to_owned(),
            )
        })
        .collect();
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// The spec's exempt namespaces as objects.
pub fn exempt_namespaces() -> Vec<Namespace> {
    EXEMPT_NAMESPACES
        .iter()
        .map(|n| privileged_namespace(n))
        .collect()
}
