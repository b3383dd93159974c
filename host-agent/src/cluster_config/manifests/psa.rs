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
/// Namespaces exempt from Pod Security in the API server's configuration:
/// the spec's list (SPEC §8: kube-system, cilium-system, monitoring, vault)
/// rechecked against the components hostctl installs, and no wider:
/// - `cilium-system` is dropped: Cilium runs in kube-system here, so nothing
///   runs in it;
/// - `vault` is kept, though the reference finds the chart sets
///   `disable_mlock` and `SKIP_SETCAP` (no IPC_LOCK): its pod has not yet
///   been checked against `baseline`, and a refused Vault pod would stop
///   every cluster's secrets (docs/policy.md, PSA).
pub const EXEMPT_NAMESPACES: [&str; 3] = ["kube-system", "monitoring", "vault"];

/// Why each namespace hostctl labels privileged needs host access; the
/// reason is set on the Namespace as [`BECAUSE_ANNOTATION`], so
/// `kubectl get ns -o yaml` says why, not only that.
pub const PRIVILEGED_BECAUSE: &[(&str, &str)] = &[
    (
        "kube-system",
        "kubeadm's static pods and Cilium's agent (host network, BPF, NET_ADMIN)",
    ),
    (
        "monitoring",
        "node-exporter (host network and PID, the host's /proc and /sys) and Alloy \
         (the node's /var/log/pods, its positions on a hostPath)",
    ),
    (
        "vault",
        "the spec's exemption (IPC_LOCK); kept until Vault's pod is checked under baseline",
    ),
    (
        "falco",
        "Falco's eBPF probe reads the host's /proc, /etc, /dev and /sys/kernel (hostPath) \
         with BPF and PERFMON capabilities",
    ),
    (
        "velero",
        "Velero's node agent reads and restores pod volumes from the node's \
         /var/lib/kubelet/pods (hostPath) for file-system backup",
    ),
    (
        "local-path-storage",
        "the provisioner's helper pods create volume directories on the node (hostPath)",
    ),
];
/// The annotation that says why a namespace is privileged.
pub const BECAUSE_ANNOTATION: &str = "hostctl.dev/privileged-because";

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
/// (local-path's helper pods, Falco), which `baseline` would refuse; its
/// reason from [`PRIVILEGED_BECAUSE`] goes with it.
pub fn privileged_namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(privileged_labels()),
            annotations: because(name)
                .map(|why| BTreeMap::from([(BECAUSE_ANNOTATION.to_owned(), why.to_owned())])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn privileged_labels() -> BTreeMap<String, String> {
    ["enforce", "audit", "warn"]
        .iter()
        .map(|mode| {
            (
                format!("pod-security.kubernetes.io/{mode}"),
                "privileged".to_owned(),
            )
        })
        .collect()
}

fn because(name: &str) -> Option<&'static str> {
    PRIVILEGED_BECAUSE
        .iter()
        .find(|(ns, _)| *ns == name)
        .map(|(_, why)| *why)
}

/// The Namespace an add-on's install applies before its chart: labelled
/// as managed by hostctl and, for a namespace in [`PRIVILEGED_BECAUSE`],
/// privileged with its reason. One object for every apply of the same
/// namespace matters: server-side apply under one field manager removes
/// the labels an earlier apply set and a later one leaves out.
pub fn addon_namespace(name: &str) -> serde_json::Value {
    let mut labels: BTreeMap<String, String> = BTreeMap::from([(
        "app.kubernetes.io/managed-by".to_owned(),
        "hostctl".to_owned(),
    )]);
    let mut annotations = BTreeMap::new();
    if let Some(why) = because(name) {
        labels.extend(privileged_labels());
        annotations.insert(BECAUSE_ANNOTATION.to_owned(), why.to_owned());
    }
    serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": name, "labels": labels, "annotations": annotations}})
}

/// The spec's exempt namespaces as objects.
pub fn exempt_namespaces() -> Vec<Namespace> {
    EXEMPT_NAMESPACES
        .iter()
        .map(|n| privileged_namespace(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_privileged_namespace_says_why_and_the_exemptions_are_no_wider_than_needed() {
        for ns in EXEMPT_NAMESPACES {
            assert!(because(ns).is_some(), "{ns} is exempt without a reason");
        }
        assert!(!EXEMPT_NAMESPACES.contains(&"cilium-system"));
        let falco = addon_namespace("falco");
        assert_eq!(
            falco["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        assert!(
            falco["metadata"]["annotations"][BECAUSE_ANNOTATION]
                .as_str()
                .is_some_and(|w| w.contains("eBPF"))
        );
        // An add-on's apply of `monitoring` keeps the labels the base
        // manifests set (one field manager: left out would be removed).
        let monitoring = addon_namespace("monitoring");
        assert_eq!(
            monitoring["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        let plain = addon_namespace("cert-manager");
        assert!(
            plain["metadata"]["labels"]
                .get("pod-security.kubernetes.io/enforce")
                .is_none()
        );
        assert_eq!(
            plain["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "hostctl"
        );
    }
}
