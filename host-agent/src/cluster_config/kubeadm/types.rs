//! Typed models of the `kubeadm.k8s.io/v1beta4` fields hostctl emits.
//!
//! Only the fields we set are modelled: kubeadm decodes strictly, so a
//! struct per upstream type with exact JSON names (checked by the field-list
//! tests against `cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go`) is what
//! keeps a typo from reaching a VM. Note v1beta4's list form of
//! `extraArgs`/`kubeletExtraArgs` ([`Arg`]), not v1beta3's map.
//!
//! Field names are upstream's (camelCase via serde, acronyms renamed
//! explicitly); what each field means is upstream's documentation, so the
//! fields here are documented only where hostctl's choice needs a reason.

use serde::Serialize;
use std::time::Duration;

/// The kubeadm config API group/version; still current in Kubernetes 1.35.
pub const KUBEADM_API_VERSION: &str = "kubeadm.k8s.io/v1beta4";

/// `kubeadm init`-only settings of the control-plane node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitConfiguration {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub node_registration: NodeRegistrationOptions,
    #[serde(rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    pub skip_phases: Vec<String>,
    pub timeouts: Timeouts,
}

/// Cluster-wide settings, uploaded by kubeadm to the `kubeadm-config` ConfigMap.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfiguration {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub cluster_name: String,
    pub kubernetes_version: String,
    pub control_plane_endpoint: String,
    pub certificates_dir: String,
    pub encryption_algorithm: String,
    pub networking: Networking,
    pub api_server: ApiServer,
    pub controller_manager: ControlPlaneComponent,
    pub scheduler: ControlPlaneComponent,
    pub proxy: Proxy,
    pub etcd: Etcd,
}

/// The controller manager's or scheduler's flags.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneComponent {
    pub extra_args: Vec<Arg>,
}

/// A worker's `kubeadm join` settings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinConfiguration {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub node_registration: NodeRegistrationOptions,
    pub discovery: Discovery,
    pub timeouts: Timeouts,
}

/// How a node registers itself. `taints` is left out (`None`) where the
/// default is wanted: upstream has no omitempty on it, and nil is what
/// gives a control plane its `NoSchedule` taint; `Some(vec![])` renders
/// `taints: []`, an untainted control plane (see
/// [`super::control_plane_taints`]).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRegistrationOptions {
    pub name: String,
    pub cri_socket: String,
    pub kubelet_extra_args: Vec<Arg>,
    pub image_pull_policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taints: Option<Vec<Taint>>,
}

/// A node taint (core/v1 `Taint`), as kubeadm registers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Taint {
    pub key: String,
    pub effect: String,
}

/// One command-line flag, without leading dashes (v1beta4 list form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    pub name: String,
    pub value: String,
}

impl Arg {
    /// `--name=value` as kubeadm passes it.
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Arg {
            name: name.to_owned(),
            value: value.into(),
        }
    }
}

/// Where an API server listens on its own node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiEndpoint {
    pub advertise_address: String,
    pub bind_port: u16,
}

/// Pod and service ranges; both always explicit (the pod CIDRs lie inside
/// kubeadm's default service range 10.96.0.0/12).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Networking {
    pub pod_subnet: String,
    pub service_subnet: String,
    pub dns_domain: String,
}

/// API server flags, mounts and certificate names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServer {
    pub extra_args: Vec<Arg>,
    pub extra_volumes: Vec<HostPathMount>,
    #[serde(rename = "certSANs")]
    pub cert_sans: Vec<String>,
}

/// A host directory mounted into a control-plane static pod.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPathMount {
    pub name: String,
    pub host_path: String,
    pub mount_path: String,
    pub read_only: bool,
    pub path_type: String,
}

/// The kube-proxy add-on switch.
#[derive(Debug, Clone, Serialize)]
pub struct Proxy {
    pub disabled: bool,
}

/// Stacked etcd on the control plane.
#[derive(Debug, Clone, Serialize)]
pub struct Etcd {
    pub local: LocalEtcd,
}

/// Where the stacked etcd keeps its data (what snapshots and restores touch).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalEtcd {
    pub data_dir: String,
    pub extra_args: Vec<Arg>,
}

/// How a worker finds and authenticates the control plane.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovery {
    pub bootstrap_token: BootstrapTokenDiscovery,
}

/// Token discovery pinned to the cluster CA, never `unsafeSkipCAVerification`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapTokenDiscovery {
    pub api_server_endpoint: String,
    pub token: String,
    pub ca_cert_hashes: Vec<String>,
}

/// kubeadm's waits. Unset fields keep kubeadm's defaults.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane_component_health_check: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_health_check: Option<GoDuration>,
    #[serde(rename = "kubernetesAPICall", skip_serializing_if = "Option::is_none")]
    pub kubernetes_api_call: Option<GoDuration>,
    #[serde(rename = "etcdAPICall", skip_serializing_if = "Option::is_none")]
    pub etcd_api_call: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_bootstrap: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<GoDuration>,
}

/// A duration in Go's `time.Duration.String()` form (`4m0s`, `24h0m0s`),
/// which is what `metav1.Duration` fields print and what reviewers compare
/// against kubeadm's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// Whole minutes.
    pub const fn minutes(m: u64) -> Self {
        GoDuration(Duration::from_secs(m * 60))
    }
}

impl std::fmt::Display for GoDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.0.as_secs();
        let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
        if h > 0 {
            write!(f, "{h}h{m}m{s}s")
        } else if m > 0 {
            write!(f, "{m}m{s}s")
        } else {
            write!(f, "{s}s")
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_prints_like_go() {
        assert_eq!(GoDuration::minutes(4).to_string(), "4m0s");
        assert_eq!(GoDuration::minutes(24 * 60).to_string(), "24h0m0s");
        assert_eq!(GoDuration(Duration::from_secs(90)).to_string(), "1m30s");
        assert_eq!(GoDuration(Duration::from_secs(5)).to_string(), "5s");
    }
}
