//! hostctl's own list of the JSON field names of every kubeadm and kubelet
//! type it emits, written from the upstream sources (not copied from the
//! shared fixture, which a second test uses as a cross-check):
//!
//! * kubeadm: `kubernetes/kubernetes` `cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go`
//!   @ 1329935739c3aa007d23cb9a4dadfee9d59ff79b (json tags; inline structs
//!   flattened; `metav1.TypeMeta` gives apiVersion/kind);
//! * kubelet: `kubernetes/kubelet` `config/v1beta1/types.go` (v0.35 line),
//!   only the fields listed here — a subset is enough, because the check is
//!   "every emitted key is listed", never the other way round.
//!
//! Shape: `TYPES` maps a type to its fields; `NESTED` maps `Type.field` to
//! the nested type (`X[]` for lists, `map[...]` for free-form maps).

pub const TYPES: &[(&str, &[&str])] = &[
    (
        "InitConfiguration",
        &[
            "apiVersion",
            "kind",
            "bootstrapTokens",
            "dryRun",
            "nodeRegistration",
            "localAPIEndpoint",
            "certificateKey",
            "skipPhases",
            "patches",
            "timeouts",
        ],
    ),
    (
        "ClusterConfiguration",
        &[
            "apiVersion",
            "kind",
            "etcd",
            "networking",
            "kubernetesVersion",
            "controlPlaneEndpoint",
            "apiServer",
            "controllerManager",
            "scheduler",
            "dns",
            "proxy",
            "certificatesDir",
            "imageRepository",
            "featureGates",
            "clusterName",
            "encryptionAlgorithm",
            "certificateValidityPeriod",
            "caCertificateValidityPeriod",
        ],
    ),
    (
        "JoinConfiguration",
        &[
            "apiVersion",
            "kind",
            "dryRun",
            "nodeRegistration",
            "caCertPath",
            "discovery",
            "controlPlane",
            "skipPhases",
            "patches",
            "timeouts",
        ],
    ),
    (
        "NodeRegistrationOptions",
        &[
            "name",
            "criSocket",
            "taints",
            "kubeletExtraArgs",
            "ignorePreflightErrors",
            "imagePullPolicy",
            "imagePullSerial",
        ],
    ),
    ("APIEndpoint", &["advertiseAddress", "bindPort"]),
    ("Networking", &["serviceSubnet", "podSubnet", "dnsDomain"]),
    (
        "ControlPlaneComponent",
        &["extraArgs", "extraVolumes", "extraEnvs"],
    ),
    (
        "APIServer",
        &["extraArgs", "extraVolumes", "extraEnvs", "certSANs"],
    ),
    ("DNS", &["imageRepository", "imageTag", "disabled"]),
    ("Proxy", &["disabled"]),
    ("Etcd", &["local", "external"]),
    (
        "LocalEtcd",
        &[
            "imageRepository",
            "imageTag",
            "dataDir",
            "extraArgs",
            "extraEnvs",
            "serverCertSANs",
            "peerCertSANs",
        ],
    ),
    ("Arg", &["name", "value"]),
    (
        "HostPathMount",
        &["name", "hostPath", "mountPath", "readOnly", "pathType"],
    ),
    ("Patches", &["directory"]),
    (
        "Timeouts",
        &[
            "controlPlaneComponentHealthCheck",
            "kubeletHealthCheck",
            "kubernetesAPICall",
            "etcdAPICall",
            "tlsBootstrap",
            "discovery",
            "upgradeManifests",
        ],
    ),
    ("JoinControlPlane", &["localAPIEndpoint", "certificateKey"]),
    (
        "Discovery",
        &["bootstrapToken", "file", "tlsBootstrapToken"],
    ),
    (
        "BootstrapTokenDiscovery",
        &[
            "token",
            "apiServerEndpoint",
            "caCertHashes",
            "unsafeSkipCAVerification",
        ],
    ),
    ("FileDiscovery", &["kubeConfigPath"]),
    ("Taint", &["key", "value", "effect", "timeAdded"]),
    (
        "KubeletConfiguration",
        &[
            "apiVersion",
            "kind",
            "cgroupDriver",
            "containerRuntimeEndpoint",
            "failSwapOn",
            "failCgroupV1",
            "authentication",
            "authorization",
            "clusterDNS",
            "clusterDomain",
            "featureGates",
            "memorySwap",
            "rotateCertificates",
            "serverTLSBootstrap",
            "seccompDefault",
            "registerWithTaints",
            "imageServiceEndpoint",
            "userNamespaces",
        ],
    ),
];

pub const NESTED: &[(&str, &str)] = &[
    (
        "InitConfiguration.nodeRegistration",
        "NodeRegistrationOptions",
    ),
    ("InitConfiguration.localAPIEndpoint", "APIEndpoint"),
    ("InitConfiguration.patches", "Patches"),
    ("InitConfiguration.timeouts", "Timeouts"),
    ("ClusterConfiguration.etcd", "Etcd"),
    ("ClusterConfiguration.networking", "Networking"),
    ("ClusterConfiguration.apiServer", "APIServer"),
    (
        "ClusterConfiguration.controllerManager",
        "ControlPlaneComponent",
    ),
    ("ClusterConfiguration.scheduler", "ControlPlaneComponent"),
    ("ClusterConfiguration.dns", "DNS"),
    ("ClusterConfiguration.proxy", "Proxy"),
    ("ClusterConfiguration.featureGates", "map[string]bool"),
    (
        "JoinConfiguration.nodeRegistration",
        "NodeRegistrationOptions",
    ),
    ("JoinConfiguration.discovery", "Discovery"),
    ("JoinConfiguration.controlPlane", "JoinControlPlane"),
    ("JoinConfiguration.patches", "Patches"),
    ("JoinConfiguration.timeouts", "Timeouts"),
    ("JoinControlPlane.localAPIEndpoint", "APIEndpoint"),
    ("NodeRegistrationOptions.kubeletExtraArgs", "Arg[]"),
    ("NodeRegistrationOptions.taints", "Taint[]"),
    ("ControlPlaneComponent.extraArgs", "Arg[]"),
    ("ControlPlaneComponent.extraVolumes", "HostPathMount[]"),
    ("APIServer.extraArgs", "Arg[]"),
    ("APIServer.extraVolumes", "HostPathMount[]"),
    ("Etcd.local", "LocalEtcd"),
    ("LocalEtcd.extraArgs", "Arg[]"),
    ("Discovery.bootstrapToken", "BootstrapTokenDiscovery"),
    ("Discovery.file", "FileDiscovery"),
    ("KubeletConfiguration.featureGates", "map[string]bool"),
];
