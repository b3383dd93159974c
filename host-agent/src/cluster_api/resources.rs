//! The kinds hostctl applies, with their REST names, in one static table.
//!
//! Decision: a table instead of `kube::discovery`. Every kind comes from
//! hostctl's own renderers or pinned upstream files, so the set is known at
//! build time; the table saves a discovery round trip per cluster (dozens
//! of requests on a fresh API server), works before CRDs are established
//! (the MetalLB pools are applied right after its CRDs), and keeps the test
//! API server small. A new kind fails loudly ([`super::KubeError::UnknownKind`])
//! and is added here.

use kube::core::{ApiResource, GroupVersionKind};

/// One REST resource: API group, version, kind, plural, scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

const fn k(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        namespaced,
    }
}

/// Every kind in the rendered manifests (base and add-ons), the Gateway
/// API CRD file and MetalLB's native manifest.
pub const KINDS: &[Kind] = &[
    k("", "v1", "Namespace", "namespaces", false),
    k("", "v1", "ServiceAccount", "serviceaccounts", true),
    k("", "v1", "ConfigMap", "configmaps", true),
    k("", "v1", "Secret", "secrets", true),
    k(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    ),
    k("", "v1", "Service", "services", true),
    k("apps", "v1", "Deployment", "deployments", true),
    k("apps", "v1", "DaemonSet", "daemonsets", true),
    k(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
    ),
    k(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    k(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    k("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    k(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    k(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    k(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    k("apps", "v1", "StatefulSet", "statefulsets", true),
    k("argoproj.io", "v1alpha1", "AppProject", "appprojects", true),
    k("core.k8sgpt.ai", "v1alpha1", "K8sGPT", "k8sgpts", true),
    k(
        "cert-manager.io",
        "v1",
        "ClusterIssuer",
        "clusterissuers",
        false,
    ),
    k("cert-manager.io", "v1", "Issuer", "issuers", true),
    k("cert-manager.io", "v1", "Certificate", "certificates", true),
    k(
        "external-secrets.io",
        "v1",
        "ClusterSecretStore",
        "clustersecretstores",
        false,
    ),
    k(
        "policies.kyverno.io",
        "v1",
        "ValidatingPolicy",
        "validatingpolicies",
        false,
    ),
    k(
        "external-secrets.io",
        "v1",
        "ExternalSecret",
        "externalsecrets",
        true,
    ),
    k(
        "argoproj.io",
        "v1alpha1",
        "ApplicationSet",
        "applicationsets",
        true,
    ),
    k(
        "monitoring.coreos.com",
        "v1alpha1",
        "ScrapeConfig",
        "scrapeconfigs",
        true,
    ),
    k(
        "argoproj.io",
        "v1alpha1",
        "Application",
        "applications",
        true,
    ),
    k(
        "cilium.io",
        "v2",
        "CiliumClusterwideNetworkPolicy",
        "ciliumclusterwidenetworkpolicies",
        false,
    ),
    k(
        "cilium.io",
        "v2",
        "CiliumNetworkPolicy",
        "ciliumnetworkpolicies",
        true,
    ),
    k(
        "metallb.io",
        "v1beta1",
        "IPAddressPool",
        "ipaddresspools",
        true,
    ),
    k(
        "metallb.io",
        "v1beta1",
        "L2Advertisement",
        "l2advertisements",
        true,
    ),
    k(
        "monitoring.coreos.com",
        "v1",
        "Prometheus",
        "prometheuses",
        true,
    ),
    k(
        "monitoring.coreos.com",
        "v1alpha1",
        "PrometheusAgent",
        "prometheusagents",
        true,
    ),
    k(
        "monitoring.coreos.com",
        "v1",
        "ThanosRuler",
        "thanosrulers",
        true,
    ),
    k(
        "monitoring.coreos.com",
        "v1",
        "PrometheusRule",
        "prometheusrules",
        true,
    ),
    k(
        "monitoring.coreos.com",
        "v1",
        "ServiceMonitor",
        "servicemonitors",
        true,
    ),
    k(
        "monitoring.coreos.com",
        "v1",
        "PodMonitor",
        "podmonitors",
        true,
    ),
    // Velero's objects the recovery scenarios apply (addons::velero::recovery).
    k(
        "velero.io",
        "v1",
        "BackupStorageLocation",
        "backupstoragelocations",
        true,
    ),
    k("velero.io", "v1", "Backup", "backups", true),
    k("velero.io", "v1", "Restore", "restores", true),
    k("velero.io", "v1", "Schedule", "schedules", true),
];

/// The table entry for an object's `apiVersion` and `kind`.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static Kind> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

impl Kind {
    /// kube-rs' description of the resource, for `Api::<DynamicObject>`.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }
}
