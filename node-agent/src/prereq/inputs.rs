//! The request, validated once: everything a step derives from it (the
//! repository of the minor, the version pin, the proxy and mirror) comes
//! from here, so no step re-parses strings from the wire.

use proto::v1::PrerequisitesRequest;

use super::PrereqError;

/// What the steps are asked to put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// Kubernetes `major.minor.patch`.
    pub version: (u32, u32, u32),
    /// HTTP(S) proxy apt uses, if any.
    pub apt_proxy: Option<String>,
    /// Registry mirror containerd uses for docker.io and registry.k8s.io.
    pub registry_mirror: Option<String>,
}

impl Inputs {
    /// Validates the request; a bad field is named in the error.
    pub fn from_request(req: &PrerequisitesRequest) -> Result<Inputs, PrereqError> {
        Ok(Inputs {
            version: parse_version(&req.kubernetes_version)?,
            apt_proxy: optional_url("apt_proxy", &req.apt_proxy)?,
            registry_mirror: optional_url("registry_mirror", &req.registry_mirror)?,
        })
    }

    /// `v1.35`: pkgs.k8s.io has one repository per minor.
    pub fn minor(&self) -> String {
        format!("v{}.{}", self.version.0, self.version.1)
    }

    /// The apt source of the minor's repository.
    pub fn repository(&self) -> String {
        format!("https://pkgs.k8s.io/core:/stable:/{}/deb/", self.minor())
    }

    /// Where the repository's signing key is published.
    pub fn key_url(&self) -> String {
        format!("{}Release.key", self.repository())
    }

    /// The upstream version without the package revision, e.g. `1.35.0`.
    pub fn upstream(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }

    /// apt's version pattern: pkgs.k8s.io versions are `1.35.0-1.1`, and the
    /// revision after `-` is the repository's business, so it is globbed.
    pub fn package_pin(&self) -> String {
        format!("{}-*", self.upstream())
    }
}

fn parse_version(text: &str) -> Result<(u32, u32, u32), PrereqError> {
    let bad = || {
        PrereqError::InvalidRequest(format!(
            "kubernetes_version {text:?} must look like v1.35.0"
        ))
    };
    let mut parts = text.strip_prefix('v').unwrap_or(text).split('.');
    let mut next = || {
        parts
            .next()
            .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
            .ok_or_else(bad)
    };
    let version = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(version)
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

    fn req(version: &str, proxy: &str) -> PrerequisitesRequest {
        PrerequisitesRequest {
            kubernetes_version: version.into(),
            apt_proxy: proxy.into(),
            registry_mirror: String::new(),
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
        Ok(())
    }

    #[test]
    fn bad_fields_are_named() {
        for (v, p, field) in [
            ("1.35", "", "kubernetes_version"),
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
