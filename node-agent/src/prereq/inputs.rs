//! The request, validated once: everything a step derives from it (the
//! repository of the minor, the version pin, the proxy and mirror) comes
//! from here, so no step re-parses strings from the wire.

use proto::v1::PrerequisitesRequest;

use super::PrereqError;

/// What the steps are asked to put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// Kubernetes `major.minor` and the patch, if one was asked for
    /// (`v1.35` means the newest patch of the minor).
    pub version: (u32, u32, Option<u32>),
    /// HTTP(S) proxy apt uses, if any.
    pub apt_proxy: Option<String>,
    /// Registry mirror containerd uses for docker.io and registry.k8s.io.
    pub registry_mirror: Option<String>,
    /// Per-upstream mirrors (hostctl's Harbor); when non-empty they replace
    /// `registry_mirror`.
    pub registry_hosts: Vec<RegistryHost>,
    /// The CA (PEM) that signed the mirrors' certificates.
    pub registry_ca_pem: Option<String>,
    /// An apt source replacing pkgs.k8s.io (a Nexus apt proxy of it).
    pub kubernetes_repository: Option<String>,
    /// A flat apt repository that replaces the node's package sources and
    /// pkgs.k8s.io for everything these steps install (see [`AptSources`]).
    pub apt_repository: Option<String>,
    /// The Ubuntu archive's suites, each where apt fetches it instead of the
    /// image's sources (hostctl's Nexus); empty: the image's sources.
    pub ubuntu_archive: Vec<AptSuite>,
}

/// One suite of an apt archive (validated `proto` `AptSuite`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSuite {
    /// The archive's base URL, without a trailing `/`.
    pub url: String,
    /// e.g. `noble-updates`: a path segment under `dists/`, so only
    /// suite-name characters are accepted.
    pub suite: String,
}

/// One registry pulled through a mirror (validated `proto` `RegistryHost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHost {
    /// e.g. `docker.io`: a directory name under `certs.d`, so only
    /// host-name characters (and a `:port`) are accepted.
    pub registry: String,
    pub upstream: String,
    pub mirror: String,
    pub override_path: bool,
}

impl RegistryHost {
    /// The mirror's `host[:port]`: containerd's directory for its CA.
    pub fn mirror_authority(&self) -> &str {
        authority(&self.mirror)
    }
}

/// `host[:port]` of an http(s) URL already validated by [`optional_url`].
pub fn authority(url: &str) -> &str {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

/// Where apt looks while the steps install packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AptSources {
    /// The node's own sources (containerd) plus pkgs.k8s.io (Kubernetes).
    System,
    /// Only the flat repository's list: a node without an internet route
    /// must not wait on, or fail over, sources it cannot reach.
    Mirror { url: String },
}

impl Inputs {
    /// Validates the request; a bad field is named in the error.
    pub fn from_request(req: &PrerequisitesRequest) -> Result<Inputs, PrereqError> {
        Ok(Inputs {
            version: parse_version(&req.kubernetes_version)?,
            apt_proxy: optional_url("apt_proxy", &req.apt_proxy)?,
            registry_mirror: optional_url("registry_mirror", &req.registry_mirror)?,
            apt_repository: optional_url("apt_repository", &req.apt_repository)?,
            registry_hosts: req
                .registry_hosts
                .iter()
                .map(registry_host)
                .collect::<Result<_, _>>()?,
            registry_ca_pem: optional_pem(&req.registry_ca_pem)?,
            kubernetes_repository: optional_url(
                "kubernetes_repository",
                &req.kubernetes_repository,
            )?,
            ubuntu_archive: ubuntu_archive(&req.ubuntu_archive)?,
        })
    }

    /// Where the packages come from.
    pub fn apt_sources(&self) -> AptSources {
        match &self.apt_repository {
            Some(url) => AptSources::Mirror { url: url.clone() },
            None => AptSources::System,
        }
    }

    /// `v1.35`: pkgs.k8s.io has one repository per minor.
    pub fn minor(&self) -> String {
        format!("v{}.{}", self.version.0, self.version.1)
    }

    /// Where the Kubernetes packages come from: the flat repository when
    /// one is set, else the minor's pkgs.k8s.io repository.
    pub fn repository(&self) -> String {
        match (&self.apt_repository, &self.kubernetes_repository) {
            (Some(url), _) => url.clone(),
            (None, Some(proxy)) => format!("{proxy}/"),
            (None, None) => self.upstream_repository(),
        }
    }

    /// The apt source of the minor's pkgs.k8s.io repository.
    pub fn upstream_repository(&self) -> String {
        format!("https://pkgs.k8s.io/core:/stable:/{}/deb/", self.minor())
    }

    /// Where the pkgs.k8s.io repository's signing key is published.
    pub fn key_url(&self) -> String {
        format!("{}Release.key", self.upstream_repository())
    }

    /// What an installed package version starts with: `1.35.0-` (any
    /// revision of that patch) or `1.35.` (any patch of the minor).
    pub fn installed_prefix(&self) -> String {
        match self.version {
            (a, b, Some(c)) => format!("{a}.{b}.{c}-"),
            (a, b, None) => format!("{a}.{b}."),
        }
    }

    /// apt's version pattern: pkgs.k8s.io versions are `1.35.0-1.1`, and the
    /// revision after `-` is the repository's business, so it is globbed.
    pub fn package_pin(&self) -> String {
        format!("{}*", self.installed_prefix())
    }
}

fn parse_version(text: &str) -> Result<(u32, u32, Option<u32>), PrereqError> {
    let bad = || {
        PrereqError::InvalidRequest(format!(
            "kubernetes_version {text:?} must look like v1.35.0 or v1.35"
        ))
    };
    let mut parts = text.strip_prefix('v').unwrap_or(text).split('.');
    let mut next = || {
        parts
            .next()
            .or(Some(""))
            .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
            .ok_or_else(bad)
    };
    let (major, minor) = (next()?, next()?);
    let patch = next().ok();
    let rest: Vec<&str> = parts.collect();
    // "v1.35." or "v1.35.x" is neither form; "v1.35.0.1" has too many parts.
    if !rest.is_empty() || (patch.is_none() && text.matches('.').count() > 1) {
        return Err(bad());
    }
    Ok((major, minor, patch))
}

fn registry_host(h: &proto::v1::RegistryHost) -> Result<RegistryHost, PrereqError> {
    let name_ok = !h.registry.is_empty()
        && !h.registry.starts_with('.')
        && h.registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !name_ok {
        return Err(PrereqError::InvalidRequest(format!(
            "registry_hosts: registry {:?} must be a registry host name such as docker.io",
            h.registry
        )));
    }
    let url = |field: &str, text: &str| {
        optional_url(&format!("registry_hosts[{}].{field}", h.registry), text)?.ok_or_else(|| {
            PrereqError::InvalidRequest(format!("registry_hosts[{}].{field} is empty", h.registry))
        })
    };
    Ok(RegistryHost {
        registry: h.registry.clone(),
        upstream: url("upstream", &h.upstream)?,
        mirror: url("mirror", &h.mirror)?,
        override_path: h.override_path,
    })
}

/// Each suite's URL and name; a suite given twice is refused (apt would
/// read it twice and warn on every run).
fn ubuntu_archive(suites: &[proto::v1::AptSuite]) -> Result<Vec<AptSuite>, PrereqError> {
    let mut out: Vec<AptSuite> = Vec::with_capacity(suites.len());
    for (i, s) in suites.iter().enumerate() {
        let field = format!("ubuntu_archive[{i}]");
        let url = optional_url(&format!("{field}.url"), &s.url)?
            .ok_or_else(|| PrereqError::InvalidRequest(format!("{field}.url is empty")))?;
        let name_ok = s.suite.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.suite
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
        if !name_ok {
            return Err(PrereqError::InvalidRequest(format!(
                "{field}.suite {:?} must be a suite name such as noble-updates",
                s.suite
            )));
        }
        if out.iter().any(|o| o.suite == s.suite) {
            return Err(PrereqError::InvalidRequest(format!(
                "{field}.suite {:?} is given twice",
                s.suite
            )));
        }
        out.push(AptSuite {
            url,
            suite: s.suite.clone(),
        });
    }
    Ok(out)
}

/// A CA bundle: empty means none; else it must hold a PEM certificate.
fn optional_pem(text: &str) -> Result<Option<String>, PrereqError> {
    if text.is_empty() {
        return Ok(None);
    }
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(PrereqError::InvalidRequest(
            "registry_ca_pem holds no PEM certificate".into(),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// An empty string means "none". URLs end up inside apt and containerd
/// configuration files, so quotes, whitespace and control characters are
/// refused rather than escaped.
fn optional_url(field: &str, text: &str) -> Result<Option<String>, PrereqError> {
    if text.is_empty() {
        return Ok(None);
    }
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or_default());
    let clean = !text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'));
    match host {
        Some(h) if !h.is_empty() && clean => Ok(Some(text.trim_end_matches('/').to_owned())),
        _ => Err(PrereqError::InvalidRequest(format!(
            "{field} {text:?} must be an http:// or https:// URL with a host"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_repository_replaces_pkgs_k8s_io() -> Result<(), PrereqError> {
        let mut r = req("v1.35.0", "");
        r.apt_repository = "http://10.0.0.1:8082/debs/".into();
        let i = Inputs::from_request(&r)?;
        assert_eq!(i.repository(), "http://10.0.0.1:8082/debs");
        assert_eq!(
            i.apt_sources(),
            AptSources::Mirror {
                url: "http://10.0.0.1:8082/debs".into()
            }
        );
        assert_eq!(
            Inputs::from_request(&req("v1.35.0", ""))?.apt_sources(),
            AptSources::System
        );
        r.apt_repository = "file:///srv/debs".into();
        let err = Inputs::from_request(&r).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("apt_repository"));
        Ok(())
    }

    fn req(version: &str, proxy: &str) -> PrerequisitesRequest {
        PrerequisitesRequest {
            kubernetes_version: version.into(),
            apt_proxy: proxy.into(),
            ..PrerequisitesRequest::default()
        }
    }

    #[test]
    fn version_selects_repository_and_pin() -> Result<(), PrereqError> {
        let i = Inputs::from_request(&req("v1.35.2", ""))?;
        assert_eq!(
            i.repository(),
            "https://pkgs.k8s.io/core:/stable:/v1.35/deb/"
        );
        assert_eq!(i.package_pin(), "1.35.2-*");
        assert_eq!(i.apt_proxy, None);
        let minor_only = Inputs::from_request(&req("v1.35", ""))?;
        assert_eq!(minor_only.package_pin(), "1.35.*");
        Ok(())
    }

    fn suite(url: &str, suite: &str) -> proto::v1::AptSuite {
        proto::v1::AptSuite {
            url: url.into(),
            suite: suite.into(),
        }
    }

    #[test]
    fn the_archive_suites_are_validated_and_named() -> Result<(), PrereqError> {
        let mut r = req("v1.35.0", "");
        assert!(Inputs::from_request(&r)?.ubuntu_archive.is_empty());
        r.ubuntu_archive = vec![
            suite("http://10.0.0.1:8081/repository/ubuntu/", "noble"),
            suite(
                "http://10.0.0.1:8081/repository/ubuntu-updates",
                "noble-updates",
            ),
        ];
        let i = Inputs::from_request(&r)?;
        assert_eq!(
            i.ubuntu_archive,
            [
                AptSuite {
                    url: "http://10.0.0.1:8081/repository/ubuntu".into(),
                    suite: "noble".into()
                },
                AptSuite {
                    url: "http://10.0.0.1:8081/repository/ubuntu-updates".into(),
                    suite: "noble-updates".into()
                },
            ]
        );
        let good = "http://10.0.0.1:8081/repository/ubuntu/";
        for (bad, named) in [
            (suite("", "noble"), "ubuntu_archive[1].url is empty"),
            (
                suite("ftp://h/ubuntu", "noble"),
                "ubuntu_archive[1].url \"ftp://",
            ),
            (suite("http://h/a b", "noble"), "ubuntu_archive[1].url"),
            (suite(good, ""), "ubuntu_archive[1].suite \"\""),
            (
                suite(good, "../noble"),
                "ubuntu_archive[1].suite \"../noble\"",
            ),
            (suite(good, "noble main"), "ubuntu_archive[1].suite"),
            (suite(good, "-noble"), "ubuntu_archive[1].suite"),
            (suite(good, "noble/updates"), "ubuntu_archive[1].suite"),
            (suite(good, "noble"), "\"noble\" is given twice"),
        ] {
            r.ubuntu_archive = vec![suite(good, "noble"), bad.clone()];
            let err = Inputs::from_request(&r)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(named), "{bad:?}: {err}");
        }
        Ok(())
    }

    #[test]
    fn bad_fields_are_named() {
        for (v, p, field) in [
            ("1", "", "kubernetes_version"),
            ("v1.35.0.1", "", "kubernetes_version"),
            ("v1.35.x", "", "kubernetes_version"),
            ("v1.35.0", "ftp://x", "apt_proxy"),
            ("v1.35.0", "http://", "apt_proxy"),
            ("v1.35.0", "http://a\"b", "apt_proxy"),
        ] {
            let err = Inputs::from_request(&req(v, p))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(field), "{v} {p}: {err}");
        }
    }
}
