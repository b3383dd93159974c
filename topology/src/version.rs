//! Kubernetes versions.
//!
//! Only the `v1.<minor>[.<patch>]` form is accepted: it is what kubeadm's
//! `kubernetesVersion` and the per-minor pkgs.k8s.io repositories use, and
//! refusing `1.35` or `latest` here avoids a failure minutes into `hostctl up`.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The minor version this tool is tested with; others get a warning.
pub const TESTED_MINOR: u32 = 35;

/// A Kubernetes 1.x version; without a patch it means "the newest patch of
/// that minor" (whatever the minor's package repository offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// The minor version (35 for v1.35.2).
    pub minor: u32,
    /// The patch version, if pinned.
    pub patch: Option<u32>,
}

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Kubernetes version of the form v1.<minor>[.<patch>]")]
pub struct VersionError(pub String);

impl FromStr for KubeVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VersionError(s.to_owned());
        let rest = s.strip_prefix("v1.").ok_or_else(bad)?;
        let mut parts = rest.split('.');
        let minor = parts.next().and_then(number).ok_or_else(bad)?;
        let patch = match parts.next() {
            None => None,
            Some(p) => Some(number(p).ok_or_else(bad)?),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(KubeVersion { minor, patch })
    }
}

/// Plain decimal digits without sign or leading zeros ("035" is not a version).
fn number(s: &str) -> Option<u32> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}", self.minor)?;
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        Ok(())
    }
}

impl Serialize for KubeVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_minor_and_patch_forms() {
        let v: KubeVersion = "v1.35.0".parse().unwrap();
        assert_eq!((v.minor, v.patch), (35, Some(0)));
        assert_eq!(v.to_string(), "v1.35.0");
        let v: KubeVersion = "v1.34".parse().unwrap();
        assert_eq!((v.minor, v.patch), (34, None));
        assert_eq!(v.to_string(), "v1.34");
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "1.35.0",
            "v2.0.0",
            "v1.35.0.1",
            "v1.",
            "v1.35.",
            "v1.x",
            "latest",
            "v1.035",
            "v1.35.0-rc.1",
            "",
        ] {
            assert!(bad.parse::<KubeVersion>().is_err(), "{bad} was accepted");
        }
    }
}
