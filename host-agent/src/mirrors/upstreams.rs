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

/// One suite of the Ubuntu archive the nodes fetch through Nexus, and the
/// Nexus apt proxy in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSuite {
    /// The Nexus repository (`/repository/<name>/`).
    pub repository: &'static str,
    /// The suite under `dists/` (the proxy's `apt.distribution`).
    pub suite: &'static str,
    /// Security updates: Ubuntu publishes them on `security.ubuntu.com`
    /// first, and its own images fetch `-security` from there (on arm64
    /// `ports.ubuntu.com` carries every suite).
    pub security: bool,
}

/// The nodes' release (24.04, noble) as its images' `ubuntu.sources`
/// fetch it, `-backports` left out (nothing hostctl installs is there).
/// A Nexus apt proxy names one distribution ("Distribution to fetch",
/// Sonatype's apt documentation), so each suite gets its own repository
/// rather than trusting one proxy to pass other suites through.
pub const UBUNTU_SUITES: [ArchiveSuite; 3] = [
    ArchiveSuite {
        repository: "ubuntu",
        suite: "noble",
        security: false,
    },
    ArchiveSuite {
        repository: "ubuntu-updates",
        suite: "noble-updates",
        security: false,
    },
    ArchiveSuite {
        repository: "ubuntu-security",
        suite: "noble-security",
        security: true,
    },
];

/// The upstream of `suite`. arm64 nodes (Apple Silicon) need
/// `ports.ubuntu.com`, which is decided by the host's architecture: the
/// nodes are VMs of the host's own architecture, and the repositories'
/// names (all a node is told) are the same either way.
pub fn ubuntu_remote(suite: &ArchiveSuite, arm64: bool) -> &'static str {
    match (arm64, suite.security) {
        (true, _) => "http://ports.ubuntu.com/ubuntu-ports/",
        (false, true) => "http://security.ubuntu.com/ubuntu/",
        (false, false) => "http://archive.ubuntu.com/ubuntu/",
    }
}

/// Nexus's repositories for the Ubuntu archive: one per [`UBUNTU_SUITES`].
pub fn ubuntu_archive(arm64: bool) -> Vec<AptProxy> {
    UBUNTU_SUITES
        .iter()
        .map(|s| AptProxy {
            name: s.repository.into(),
            remote_url: ubuntu_remote(s, arm64).into(),
            distribution: s.suite.into(),
            flat: false,
        })
        .collect()
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

/// Every apt proxy the topology's clusters need: the archive's suites and
/// one per Kubernetes minor in use.
pub fn apt_proxies(topology: &topology::Topology, arm64: bool) -> Vec<AptProxy> {
    let mut out = ubuntu_archive(arm64);
    for cluster in topology.clusters() {
        let repo = kubernetes_packages(cluster.kubernetes_version);
        if !out.contains(&repo) {
            out.push(repo);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_archive_suite_has_its_own_proxy_of_the_hosts_architecture() {
        let seen = |arm64| -> Vec<(String, String, String)> {
            ubuntu_archive(arm64)
                .into_iter()
                .map(|p| (p.name, p.distribution, p.remote_url))
                .collect()
        };
        let ports = "http://ports.ubuntu.com/ubuntu-ports/";
        assert_eq!(
            seen(true),
            [
                ("ubuntu".into(), "noble".into(), ports.into()),
                (
                    "ubuntu-updates".into(),
                    "noble-updates".into(),
                    ports.into()
                ),
                (
                    "ubuntu-security".into(),
                    "noble-security".into(),
                    ports.into()
                ),
            ]
        );
        let archive = "http://archive.ubuntu.com/ubuntu/";
        assert_eq!(
            seen(false),
            [
                ("ubuntu".into(), "noble".into(), archive.into()),
                (
                    "ubuntu-updates".into(),
                    "noble-updates".into(),
                    archive.into()
                ),
                (
                    "ubuntu-security".into(),
                    "noble-security".into(),
                    "http://security.ubuntu.com/ubuntu/".into()
                ),
            ]
        );
        assert!(ubuntu_archive(true).iter().all(|p| !p.flat));

        let topology = topology::default_topology();
        let names: Vec<String> = apt_proxies(&topology, true)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names[..3], ["ubuntu", "ubuntu-updates", "ubuntu-security"]);
        assert!(names[3..].iter().all(|n| n.starts_with("kubernetes-v1.")));
    }
}
