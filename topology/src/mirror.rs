//! The optional `mirrors:` section: where nodes get packages and images
//! when the host runs caches (the spec's Nexus for apt, Harbor for images),
//! so a rebuild does not download the internet again.
//!
//! Either the user names mirrors of their own (the three URLs), or asks
//! hostctl to run them (`managed: true`: Harbor and Nexus on the host's
//! Docker, `hostctl mirrors`, docs/mirrors.md); the two are exclusive.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Caches the nodes use instead of the internet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirrors {
    /// hostctl runs Harbor (:8443) and Nexus (:8081) on the host's Docker
    /// and points the nodes at them; the URLs below must then be absent.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub managed: bool,
    /// HTTP proxy for apt, e.g. `http://192.168.64.1:8081`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apt_proxy: Option<MirrorUrl>,
    /// Registry mirror containerd uses for docker.io and registry.k8s.io.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_mirror: Option<MirrorUrl>,
    /// A flat apt repository (`deb [trusted=yes] URL/ ./`) that replaces
    /// the node's package sources for what hostctl installs (containerd and
    /// the Kubernetes packages), for nodes with no route to the internet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apt_repository: Option<MirrorUrl>,
}

/// An `http://` or `https://` URL with a host. The node agent writes it into
/// apt and containerd configuration files, so quotes, backslashes and
/// whitespace are refused here rather than escaped there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MirrorUrl(String);

impl MirrorUrl {
    /// The URL as written (without a trailing `/`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MirrorUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a mirror URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an http:// or https:// URL with a host")]
pub struct MirrorUrlError(String);

impl FromStr for MirrorUrl {
    type Err = MirrorUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"));
        let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
        let port_ok = authority
            .and_then(|a| a.rsplit_once(':'))
            .is_none_or(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
        let clean = !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'));
        match authority {
            Some(a) if !a.is_empty() && !a.starts_with(':') && port_ok && clean => {
                Ok(MirrorUrl(s.trim_end_matches('/').to_owned()))
            }
            _ => Err(MirrorUrlError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host() {
        for good in [
            "http://192.168.64.1:8081",
            "https://harbor.local/",
            "http://h",
        ] {
            assert!(good.parse::<MirrorUrl>().is_ok(), "{good}");
        }
        for bad in [
            "ftp://h",
            "http://",
            "https://:80",
            "http://h:0",
            "http://h:x",
            "h:80",
            "http://a b",
            "http://a\"b",
        ] {
            assert!(bad.parse::<MirrorUrl>().is_err(), "{bad}");
        }
    }
}
