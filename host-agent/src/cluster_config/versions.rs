//! Every pinned version and download location of the cluster add-ons, in
//! one place: an upgrade is a one-file change that the golden tests then
//! show in full. The installer that applies them (Helm CLI, `kubectl apply
//! --server-side`) reads them from here.

/// The Cilium Helm chart. 1.19 is the line that targets Gateway API v1.4;
/// the value paths in [`CILIUM_VALUE_PATHS`] were checked against this
/// chart's `values.yaml`.
pub const CILIUM_CHART_VERSION: &str = "1.19.7";
/// The chart repository (`helm pull cilium --repo <this>`; see `charts::CILIUM`).
pub const CILIUM_CHART_REPO: &str = "https://helm.cilium.io/";
/// The chart reference inside that repository.
pub const CILIUM_CHART: &str = "cilium/cilium";
/// Where Cilium is installed: the chart's and the cilium CLI's default, so
/// `cilium status` and `cilium clustermesh status` work without flags; PSA
/// exempts it (the spec's `cilium-system` is exempt too, for users who move it).
pub const CILIUM_NAMESPACE: &str = "kube-system";

/// Gateway API release whose CRDs Cilium 1.19 implements (spec: v1.4).
pub const GATEWAY_API_VERSION: &str = "v1.4.1";
/// The standard-channel CRDs of [`GATEWAY_API_VERSION`]. Not vendored (the
/// file is about 344 KB); it must be applied with `kubectl apply
/// --server-side` because the HTTPRoute CRD is too large for client-side
/// apply's last-applied annotation, and before Cilium so the chart creates
/// the `cilium` GatewayClass.
pub const GATEWAY_API_CRDS_URL: &str =
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.1/standard-install.yaml";

/// MetalLB release (L2 mode; native manifests, no FRR).
pub const METALLB_VERSION: &str = "v0.16.1";
/// MetalLB's native-mode install manifest for [`METALLB_VERSION`]; it
/// creates the `metallb-system` namespace (labelled privileged) and CRDs,
/// after which the rendered `IPAddressPool` and `L2Advertisement` apply.
pub const METALLB_MANIFEST_URL: &str = "https://raw.githubusercontent.com/metallb/metallb/v0.16.1/config/manifests/metallb-native.yaml";

/// The local-path provisioner release rendered in the manifests.
pub const LOCAL_PATH_VERSION: &str = "v0.0.32";
/// Its image, pinned to [`LOCAL_PATH_VERSION`].
pub const LOCAL_PATH_IMAGE: &str = "rancher/local-path-provisioner:v0.0.32";
/// The helper pod image that creates and removes volume directories; pinned
/// (upstream says `busybox`, i.e. latest) so a node never pulls a surprise.
pub const LOCAL_PATH_HELPER_IMAGE: &str = "busybox:1.37.0";

/// Every Cilium value path (Helm `--set` style) the renderer may emit.
/// A test checks that each exists in the pinned chart and that the renderer
/// emits nothing outside this list, so a chart upgrade starts here.
/// Paths below `clustermesh.config.clusters` are item keys, checked
/// against the chart's documented item keys.
pub const CILIUM_VALUE_PATHS: &[&str] = &[
    "cluster.name",
    "cluster.id",
    "kubeProxyReplacement",
    "k8sServiceHost",
    "k8sServicePort",
    "routingMode",
    "tunnelProtocol",
    "ipam.mode",
    "ipam.operator.clusterPoolIPv4PodCIDRList",
    "ipam.operator.clusterPoolIPv4MaskSize",
    "gatewayAPI.enabled",
    "l7Proxy",
    "enableLBIPAM",
    "hubble.enabled",
    "hubble.relay.enabled",
    "hubble.ui.enabled",
    "tls.ca.cert",
    "tls.ca.key",
    "clustermesh.useAPIServer",
    "clustermesh.apiserver.service.type",
    "clustermesh.apiserver.service.annotations",
    "clustermesh.apiserver.tls.authMode",
    "clustermesh.apiserver.tls.auto.enabled",
    "clustermesh.apiserver.tls.auto.method",
    "clustermesh.config.enabled",
    "clustermesh.config.clusters",
];
