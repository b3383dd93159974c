//! What the managed mirrors hold. Image references on the nodes keep their
//! upstream names (`docker.io/library/nginx`); containerd sends the pull to
//! Harbor's proxy-cache project for that upstream first
//! (`https://<host>:8443/v2/dockerhub`, `override_path`), the upstream
//! second. Charts and GitOps artifacts live in one plain OCI project,
//! [`crate::charts::MIRROR_PATH`].

use topology::KubeVersion;

/// One upstream registry and the Harbor proxy-cache project in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstream {
    /// The registry as image references name it (a `certs.d` directory).
    pub registry: &'static str,
    /// The registry's own server: containerd's fallback, Harbor's endpoint.
    pub server: &'static str,
    /// The Harbor project (`/v2/<project>` on the node, `<project>/` in a
    /// rewritten image reference).
    pub project: &'static str,
    /// Harbor's adapter for it (`src/pkg/reg/model/registry.go`
    /// `RegistryType*`): Docker Hub has its own, registry.k8s.io is a plain
    /// distribution registry.
    pub harbor_type: &'static str,
}

/// The proxied upstreams (reference platform-addons §2.15).
pub const UPSTREAMS: [Upstream; 4] = [
    Upstream {
        registry: "docker.io",
        server: "https://registry-1.docker.io",
        project: "dockerhub",
        harbor_type: "docker-hub",
    },
    Upstream {
        registry: "registry.k8s.io",
        server: "https://registry.k8s.io",
        project: "k8s",
        harbor_type: "docker-registry",
    },
    Upstream {
        registry: "quay.io",
        server: "https://quay.io",
        project: "quay",
        harbor_type: "quay",
    },
    Upstream {
        registry: "ghcr.io",
        server: "https://ghcr.io",
        project: "ghcr",
        harbor_type: "github-ghcr",
    },
];

/// Harbor's endpoint for Docker Hub is `https://hub.docker.com` (the
/// adapter's default), not the registry server containerd uses.
pub fn harbor_endpoint(upstream: &Upstream) -> &'static str {
    match upstream.harbor_type {
        "docker-hub" => "https://hub.docker.com",
        _ => upstream.server,
    }
}

/// One Nexus apt proxy repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptProxy {
    /// Repository name: `/repository/<name>/` on Nexus.
    pub name: String,
    pub remote_url: String,
    /// The suite Nexus fetches (`apt.distribution`).
    pub distribution: String,
    /// pkgs.k8s.io repositories are flat (`deb URL /`, no `dists/`).
    pub flat: bool,
}

/// Nexus's repository for the Ubuntu archive of the nodes' release
/// (24.04, noble). arm64 nodes (Apple Silicon) need `ports.ubuntu.com`.
pub fn ubuntu_archive(arm64: bool) -> AptProxy {
    AptProxy {
        name: "ubuntu".into(),
        remote_url: if arm64 {
            "http://ports.ubuntu.com/ubuntu-ports/".into()
        } else {
            "http://archive.ubuntu.com/ubuntu/".into()
        },
        distribution: "noble".into(),
        flat: false,
    }
}

/// Nexus's repository name for a Kubernetes minor's packages.
pub fn kubernetes_repository_name(version: KubeVersion) -> String {
    format!("kubernetes-v1.{}", version.minor)
}

/// The apt proxy of the minor's pkgs.k8s.io repository (flat).
pub fn kubernetes_packages(version: KubeVersion) -> AptProxy {
    AptProxy {
        name: kubernetes_repository_name(version),
        remote_url: format!(
            "https://pkgs.k8s.io/core:/stable:/v1.{}/deb/",
            version.minor
        ),
        distribution: "/".into(),
        flat: true,
    }
}

/// Every apt proxy the topology's clusters need: the archive and one per
/// Kubernetes minor in use.
pub fn apt_proxies(topology: &topology::Topology, arm64: bool) -> Vec<AptProxy> {
    let mut out = vec![ubuntu_archive(arm64)];
    for cluster in topology.clusters() {
        let repo = kubernetes_packages(cluster.kubernetes_version);
        if !out.contains(&repo) {
            out.push(repo);
        }
    }
    out
}
