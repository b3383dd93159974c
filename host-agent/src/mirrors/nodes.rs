//! What a node is told when the mirrors are managed: a containerd
//! `hosts.toml` per upstream registry pointing at its Harbor project, the
//! lab root as the CA that signed Harbor's certificate, and the Ubuntu
//! archive and the minor's Kubernetes packages through Nexus.

use super::Endpoints;
use super::upstreams::{UBUNTU_SUITES, UPSTREAMS, kubernetes_repository_name};
use proto::v1::{AptSuite, RegistryHost};
use topology::KubeVersion;

/// The managed mirrors as the prerequisites step sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedMirrors {
    pub endpoints: Endpoints,
    /// The lab root (PEM) that signed Harbor's serving certificate.
    pub ca_pem: String,
}

impl ManagedMirrors {
    /// One entry per upstream: `https://<host>:8443/v2/<project>` with
    /// `override_path`, since containerd would otherwise append `/v2`
    /// again and Harbor would see `/v2/<project>/v2/…` (goharbor/harbor#18530).
    pub fn registry_hosts(&self) -> Vec<RegistryHost> {
        UPSTREAMS
            .iter()
            .map(|u| RegistryHost {
                registry: u.registry.to_owned(),
                upstream: u.server.to_owned(),
                mirror: format!("{}/v2/{}", self.endpoints.harbor(), u.project),
                override_path: true,
            })
            .collect()
    }

    /// Nexus's apt proxy of pkgs.k8s.io for the node's minor.
    pub fn kubernetes_repository(&self, version: KubeVersion) -> String {
        format!(
            "{}/repository/{}",
            self.endpoints.nexus(),
            kubernetes_repository_name(version)
        )
    }

    /// Nexus's apt proxy per suite of the Ubuntu archive
    /// (`http://<host>:8081/repository/<name>/`). Which upstream each
    /// proxies (ports.ubuntu.com on an arm64 host) is Nexus's business:
    /// the node sees the same names on either architecture.
    pub fn ubuntu_archive(&self) -> Vec<AptSuite> {
        UBUNTU_SUITES
            .iter()
            .map(|s| AptSuite {
                url: format!("{}/repository/{}/", self.endpoints.nexus(), s.repository),
                suite: s.suite.to_owned(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::steps::Mirrors;

    #[test]
    fn managed_mirrors_send_a_harbor_project_per_upstream_and_nexus_for_packages() {
        let text = format!("{}mirrors:\n  managed: true\n", topology::default_yaml());
        let topology = topology::parse(&text, "t.yaml").expect("loads").topology;
        let host = "192.168.64.1".parse().expect("ip");
        let mirrors = Mirrors::from_topology(&topology, host, Some("PEM"));
        let version: KubeVersion = "v1.35.0".parse().expect("version");
        let req = mirrors.request(version);
        let hosts: Vec<(&str, &str, bool)> = req
            .registry_hosts
            .iter()
            .map(|h| (h.registry.as_str(), h.mirror.as_str(), h.override_path))
            .collect();
        assert_eq!(
            hosts,
            [
                ("docker.io", "https://192.168.64.1:8443/v2/dockerhub", true),
                ("registry.k8s.io", "https://192.168.64.1:8443/v2/k8s", true),
                ("quay.io", "https://192.168.64.1:8443/v2/quay", true),
                ("ghcr.io", "https://192.168.64.1:8443/v2/ghcr", true),
            ]
        );
        assert_eq!(req.registry_ca_pem, "PEM");
        assert_eq!(
            req.kubernetes_repository,
            "http://192.168.64.1:8081/repository/kubernetes-v1.35"
        );
        let archive: Vec<(&str, &str)> = req
            .ubuntu_archive
            .iter()
            .map(|s| (s.url.as_str(), s.suite.as_str()))
            .collect();
        assert_eq!(
            archive,
            [
                ("http://192.168.64.1:8081/repository/ubuntu/", "noble"),
                (
                    "http://192.168.64.1:8081/repository/ubuntu-updates/",
                    "noble-updates"
                ),
                (
                    "http://192.168.64.1:8081/repository/ubuntu-security/",
                    "noble-security"
                ),
            ]
        );
        // Every repository a node is sent is one `mirrors up` creates, on
        // either architecture.
        for arm64 in [true, false] {
            let created: Vec<String> = crate::mirrors::upstreams::apt_proxies(&topology, arm64)
                .into_iter()
                .map(|p| format!("http://192.168.64.1:8081/repository/{}/", p.name))
                .collect();
            for url in req.ubuntu_archive.iter().map(|s| &s.url) {
                assert!(created.contains(url), "{url} is not created: {created:?}");
            }
            let kubernetes = format!("{}/", req.kubernetes_repository);
            assert!(created.contains(&kubernetes), "{kubernetes}");
        }
        assert!(req.registry_mirror.is_empty() && req.apt_repository.is_empty());

        // Charts go to Harbor's OCI project, verified with the lab root.
        let home = std::path::Path::new("/home");
        let charts = crate::charts::Mirror::from_topology(&topology, host, None, home)
            .expect("a chart mirror");
        assert_eq!(charts.remote(), "oci://192.168.64.1:8443/hostctl-charts");
        let argv: Vec<String> = charts
            .tls()
            .argv()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "--ca-file",
                "/home/pki/lab/ca.crt",
                "--registry-config",
                "/home/mirrors/helm-registry.json"
            ]
        );

        let plain = Mirrors::from_topology(&topology::default_topology(), host, Some("PEM"));
        let req = plain.request(version);
        assert!(req.registry_hosts.is_empty() && req.kubernetes_repository.is_empty());
        assert!(
            req.ubuntu_archive.is_empty(),
            "no mirrors: the image's sources"
        );
    }
}
