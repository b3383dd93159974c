//! kubeadm configuration for every node, rendered on the host from the
//! topology so it can be reviewed (`hostctl render`) before a VM exists.
//!
//! * control plane: `InitConfiguration` + `ClusterConfiguration` +
//!   `KubeletConfiguration` ([`init_config`]);
//! * worker: `JoinConfiguration` ([`join_config`]), taking the bootstrap
//!   token and CA pin as parameters because the token is minted at join time.
//!
//! Choices that hold for every cluster: kube-proxy is skipped (both the
//! `addon/kube-proxy` phase and `proxy.disabled`; Cilium replaces it),
//! containerd's socket, the systemd cgroup driver, ECDSA-P256 keys to match
//! the host's CAs, and explicit pod and service CIDRs.

pub mod types;

use super::cluster::{API_SERVER_PORT, ClusterView, is_control_plane, node_ip};
use super::error::{K8sError, Result};
use super::kubelet::{CONTAINERD_SOCKET, KubeletConfiguration};
use super::manifests::psa;
use super::yaml;
use std::net::Ipv4Addr;
use topology::Resolved;
use types::*;

/// The token `hostctl render` writes into join configs: a well-formed
/// stand-in, because the real one is minted at join time and expires.
pub const PLACEHOLDER_TOKEN: &str = "abcdef.0123456789abcdef";
/// The CA pin `hostctl render` writes when no PKI exists yet.
pub const PLACEHOLDER_CA_HASH: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Where kubeadm finds (and the node agent pre-places) the cluster PKI.
pub const CERTIFICATES_DIR: &str = "/etc/kubernetes/pki";
/// The stacked etcd's data directory (snapshots and restores use it).
pub const ETCD_DATA_DIR: &str = "/var/lib/etcd";
/// etcd's peer port (kubeadm's stacked etcd).
pub const ETCD_PEER_PORT: u16 = 2380;
/// The etcd image kubeadm 1.35 runs (no `imageRepository` is set, so
/// registry.k8s.io; `DefaultEtcdVersion` 3.6.6-0 as
/// ../shared/reference/k8s-bootstrap.md §3 reads kubeadm v1.35's
/// constants.go). A lost control plane's etcd is restored with this
/// image's etcdutl before kubeadm starts it; UNVERIFIED against
/// `kubeadm config images list` on a real node.
pub const ETCD_IMAGE: &str = "registry.k8s.io/etcd:3.6.6-0";
/// The phase Cilium's kube-proxy replacement needs skipped.
pub const SKIP_KUBE_PROXY: &str = "addon/kube-proxy";
/// Matches the host's ECDSA P-256 CAs, so kubeadm's leaves are EC too.
/// The controller manager's secure port (kubeadm's default), where
/// Prometheus scrapes it.
pub const CONTROLLER_MANAGER_METRICS_PORT: u16 = 10257;
/// The scheduler's secure port (kubeadm's default).
pub const SCHEDULER_METRICS_PORT: u16 = 10259;
/// etcd's plain-HTTP metrics listener: on loopback for kubeadm's probes
/// (it takes the first URL) and on the node's address for Prometheus.
/// It serves `/metrics` and `/health` only, never keys.
pub const ETCD_METRICS_PORT: u16 = 2381;
pub const ENCRYPTION_ALGORITHM: &str = "ECDSA-P256";

/// The `kubeadm init --config` file of `cluster`'s control plane: why a
/// string and not the structs? The node agent writes it verbatim and
/// `hostctl render` shows exactly those bytes.
pub fn init_config(resolved: &Resolved, cluster: &str) -> Result<String> {
    let view = ClusterView::new(resolved, cluster)?;
    let header = format!(
        "kubeadm init --config for {node} (cluster {cluster}), rendered by hostctl from the topology.\n\
         The node agent places {admission} (clusters/{cluster}/admission-config.yaml)\n\
         and the host's CA files in {CERTIFICATES_DIR} before it runs kubeadm init.",
        node = view.control_plane.name,
        admission = psa::ADMISSION_CONFIG_PATH,
    );
    let docs = [
        yaml::document("InitConfiguration", &init_configuration(&view))?,
        yaml::document("ClusterConfiguration", &cluster_configuration(&view))?,
        yaml::document("KubeletConfiguration", &KubeletConfiguration::standard())?,
    ];
    Ok(yaml::file(&header, &docs))
}

/// The `kubeadm join --config` file of worker `node`, discovering the API
/// server with `token` and pinning the cluster CA with `ca_hash`
/// (`sha256:<hex>`, as `certs::ClusterPki::ca_cert_hash` returns it). Both
/// are checked here because kubeadm would reject them only on the VM.
pub fn join_config(resolved: &Resolved, node: &str, token: &str, ca_hash: &str) -> Result<String> {
    let worker = resolved
        .topology()
        .node(node)
        .ok_or_else(|| K8sError::UnknownNode(node.to_owned()))?;
    if is_control_plane(worker) {
        return Err(K8sError::JoinOfControlPlane(node.to_owned()));
    }
    check_token(node, token)?;
    check_ca_hash(node, ca_hash)?;
    let view = ClusterView::new(resolved, &worker.cluster)?;
    let ip = node_ip(resolved, worker)?;
    let join = JoinConfiguration {
        api_version: KUBEADM_API_VERSION,
        kind: "JoinConfiguration",
        node_registration: node_registration(node, ip),
        discovery: Discovery {
            bootstrap_token: BootstrapTokenDiscovery {
                api_server_endpoint: view.api_endpoint(),
                token: token.to_owned(),
                ca_cert_hashes: vec![ca_hash.to_owned()],
            },
        },
        timeouts: Timeouts {
            discovery: Some(GoDuration::minutes(5)),
            tls_bootstrap: Some(GoDuration::minutes(5)),
            kubelet_health_check: Some(GoDuration::minutes(4)),
            ..Timeouts::default()
        },
    };
    let mut header = format!(
        "kubeadm join --config for {node} (cluster {}), rendered by hostctl from the topology.",
        view.name()
    );
    if token == PLACEHOLDER_TOKEN {
        header.push_str(
            "\ndiscovery.bootstrapToken.token is a placeholder: the real token is minted at join time.",
        );
    }
    if ca_hash == PLACEHOLDER_CA_HASH {
        header.push_str(
            "\ncaCertHashes is a placeholder: no PKI exists yet (`hostctl up` creates it).",
        );
    }
    Ok(yaml::file(
        &header,
        &[yaml::document("JoinConfiguration", &join)?],
    ))
}

fn init_configuration(view: &ClusterView<'_>) -> InitConfiguration {
    InitConfiguration {
        api_version: KUBEADM_API_VERSION,
        kind: "InitConfiguration",
        node_registration: NodeRegistrationOptions {
            taints: control_plane_taints(view.cluster.role),
            ..node_registration(&view.control_plane.name, view.control_plane_ip)
        },
        local_api_endpoint: ApiEndpoint {
            advertise_address: view.control_plane_ip.to_string(),
            bind_port: API_SERVER_PORT,
        },
        skip_phases: vec![SKIP_KUBE_PROXY.to_owned()],
        timeouts: Timeouts {
            control_plane_component_health_check: Some(GoDuration::minutes(4)),
            kubelet_health_check: Some(GoDuration::minutes(4)),
            kubernetes_api_call: Some(GoDuration::minutes(1)),
            etcd_api_call: Some(GoDuration::minutes(2)),
            ..Timeouts::default()
        },
    }
}

fn cluster_configuration(view: &ClusterView<'_>) -> ClusterConfiguration {
    let cluster = view.cluster;
    ClusterConfiguration {
        api_version: KUBEADM_API_VERSION,
        kind: "ClusterConfiguration",
        cluster_name: cluster.name.clone(),
        kubernetes_version: view.kubeadm_version(),
        control_plane_endpoint: view.api_endpoint(),
        certificates_dir: CERTIFICATES_DIR.to_owned(),
        encryption_algorithm: ENCRYPTION_ALGORITHM.to_owned(),
        networking: Networking {
            pod_subnet: cluster.pod_cidr.to_string(),
            service_subnet: cluster.service_cidr.to_string(),
            dns_domain: "cluster.local".to_owned(),
        },
        api_server: ApiServer {
            extra_args: vec![Arg::new(
                "admission-control-config-file",
                psa::ADMISSION_CONFIG_PATH,
            )],
            extra_volumes: vec![HostPathMount {
                name: "admission-config".to_owned(),
                host_path: psa::ADMISSION_CONFIG_DIR.to_owned(),
                mount_path: psa::ADMISSION_CONFIG_DIR.to_owned(),
                read_only: true,
                path_type: "DirectoryOrCreate".to_owned(),
            }],
            cert_sans: cert_sans(view),
        },
        controller_manager: metrics_on_node_address(view),
        scheduler: metrics_on_node_address(view),
        proxy: Proxy { disabled: true },
        etcd: Etcd {
            local: LocalEtcd {
                data_dir: ETCD_DATA_DIR.to_owned(),
                extra_args: vec![Arg::new(
                    "listen-metrics-urls",
                    format!(
                        "http://127.0.0.1:{ETCD_METRICS_PORT},http://{}:{ETCD_METRICS_PORT}",
                        view.control_plane_ip
                    ),
                )],
            },
        },
    }
}

/// kubeadm binds the controller manager's and scheduler's secure ports
/// to 127.0.0.1, where Prometheus cannot scrape them, and
/// kube-prometheus-stack's default alerts then fire `TargetDown` on every
/// kubeadm cluster. They bind to the node's own address instead (not
/// 0.0.0.0: nothing else needs them); the ports stay HTTPS with
/// Kubernetes authentication and authorisation, and kubeadm's liveness
/// probes follow the bind address. The ports stay kubeadm's defaults
/// ([`CONTROLLER_MANAGER_METRICS_PORT`], [`SCHEDULER_METRICS_PORT`]).
fn metrics_on_node_address(view: &ClusterView<'_>) -> ControlPlaneComponent {
    ControlPlaneComponent {
        extra_args: vec![Arg::new("bind-address", view.control_plane_ip.to_string())],
    }
}

/// Every name the API server certificate must carry beyond kubeadm's own
/// (`kubernetes`, `kubernetes.default…`, the service IP): the control
/// plane's stable address and name, the cluster name (kubeconfig contexts),
/// and loopback for the node agent's local calls. Adding one later means
/// re-issuing the certificate, so they are all set before `kubeadm init`.
fn cert_sans(view: &ClusterView<'_>) -> Vec<String> {
    let mut sans = vec![
        view.control_plane_ip.to_string(),
        view.control_plane.name.clone(),
        view.cluster.name.clone(),
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
    ];
    let mut seen = std::collections::HashSet::new();
    sans.retain(|s| seen.insert(s.clone()));
    sans
}

/// The node-local registration: the node's name, containerd, and its stable
/// address as the kubelet's node-ip (a VM may have several NICs).
fn node_registration(name: &str, ip: Ipv4Addr) -> NodeRegistrationOptions {
    NodeRegistrationOptions {
        name: name.to_owned(),
        cri_socket: CONTAINERD_SOCKET.to_owned(),
        kubelet_extra_args: vec![Arg::new("node-ip", ip.to_string())],
        image_pull_policy: "IfNotPresent".to_owned(),
        taints: None,
    }
}

/// The control plane's taints by cluster role: mgmt's control plane is
/// untainted (`Some(vec![])`), so the platform's small controllers may run
/// beside the API server — the spec's mgmt components do not fit its one
/// 6 GB worker otherwise (the fit report, `docs/platform.md` "Will it
/// fit?"); app clusters keep kubeadm's default `NoSchedule` taint (`None`),
/// so applications stay on their workers.
pub fn control_plane_taints(role: topology::ClusterRole) -> Option<Vec<Taint>> {
    match role {
        topology::ClusterRole::Mgmt => Some(Vec::new()),
        topology::ClusterRole::App => None,
    }
}

/// Whether a control plane of a `role` cluster keeps kubeadm's
/// `node-role.kubernetes.io/control-plane:NoSchedule` taint.
pub fn control_plane_tainted(role: topology::ClusterRole) -> bool {
    control_plane_taints(role).is_none_or(|t| !t.is_empty())
}

/// kubeadm's `BootstrapTokenPattern`: `[a-z0-9]{6}.[a-z0-9]{16}`.
fn check_token(node: &str, token: &str) -> Result<()> {
    let part = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match token.split_once('.') {
        Some((id, secret)) if part(id, 6) && part(secret, 16) => Ok(()),
        _ => Err(K8sError::BadToken {
            node: node.to_owned(),
        }),
    }
}

/// kubeadm's pin format: `sha256:` + 64 hex digits (the only type it knows).
fn check_ca_hash(node: &str, hash: &str) -> Result<()> {
    match hash.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(K8sError::BadCaHash {
            node: node.to_owned(),
            hash: hash.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_is_kubeadms() {
        assert!(check_token("n", PLACEHOLDER_TOKEN).is_ok());
        assert!(check_token("n", &certs::bootstrap_token()).is_ok());
        for bad in [
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdefg",
            "",
        ] {
            assert!(check_token("n", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ca_hash_shape_is_kubeadms() {
        assert!(check_ca_hash("n", PLACEHOLDER_CA_HASH).is_ok());
        assert!(check_ca_hash("n", "sha256:abc").is_err());
        assert!(check_ca_hash("n", &PLACEHOLDER_CA_HASH.replace("sha256", "md5")).is_err());
    }
}
