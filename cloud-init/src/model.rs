//! A typed model of the `#cloud-config` modules hostctl uses.
//!
//! Only the keys below exist, so nothing else (packages, users, arbitrary
//! scripts) can creep into a node's user-data: cloud-init stays a file writer
//! and service starter, and the heavy work happens in the node agent where
//! its progress and errors are visible. Each field maps to one key of
//! cloud-init's schema (`cc_set_hostname`, `cc_update_etc_hosts`,
//! `cc_package_update_upgrade_install`, `cc_bootcmd`, `cc_write_files`,
//! `cc_runcmd`); empty fields are omitted because the schema requires
//! `minItems: 1` for the lists.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::{Argv, Error};

/// The `#cloud-config` document.
///
/// Fields are public because each element type enforces its own invariants
/// when built; [`CloudConfig::render`](crate::CloudConfig::render) checks the
/// one cross-entry rule (no two files at one path).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CloudConfig {
    /// The node name; set explicitly rather than trusting the provider's
    /// metadata, because certificates and kubeadm use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Hostname>,
    /// `false` so cloud-init applies `hostname` rather than keeping the
    /// image's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserve_hostname: Option<bool>,
    /// `true` makes the hostname resolve locally, which kubeadm's preflight
    /// checks expect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manage_etc_hosts: Option<bool>,
    /// Explicitly `false`: an apt update/upgrade in cloud-init is exactly the
    /// kind of long, silent step that trips Multipass's launch timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_update: Option<bool>,
    /// Explicitly `false`, for the same reason as `package_update`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_upgrade: Option<bool>,
    /// Runs on every boot, early; unused by the default node document.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bootcmd: Vec<Argv>,
    /// Written in cloud-init's init stage, before any `runcmd`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_files: Vec<WriteFile>,
    /// Runs once, in cloud-init's final stage, after `write_files`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runcmd: Vec<Argv>,
}

impl CloudConfig {
    /// Refuses a document cloud-init would accept but misapply.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let mut seen = BTreeSet::new();
        for file in &self.write_files {
            if !seen.insert(file.path.as_str()) {
                return Err(Error::DuplicatePath {
                    path: file.path.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A hostname that `hostnamectl` keeps as given and Kubernetes accepts as a
/// node name: a lowercase RFC 1123 label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    /// Validates `name` as a lowercase DNS-1123 label (1-63 of `a-z0-9-`, no
    /// leading or trailing hyphen), the intersection of what Multipass,
    /// systemd and the kubelet accept.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let hostname = name.into();
        let reason = if hostname.is_empty() || hostname.len() > 63 {
            Some("must be 1-63 characters")
        } else if !hostname
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Some("only lowercase letters, digits and '-' are allowed")
        } else if hostname.starts_with('-') || hostname.ends_with('-') {
            Some("must start and end with a letter or digit")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidHostname { hostname, reason }),
            None => Ok(Self(hostname)),
        }
    }

    /// The validated name, for callers that derive node names or paths.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How `content` is encoded; cloud-init decodes it before writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Encoding {
    /// Written as is (the default, so it is omitted from the YAML).
    #[serde(rename = "text/plain")]
    Plain,
    /// Base64, for bytes that are not valid YAML text.
    #[serde(rename = "b64")]
    Base64,
    /// Gzip, then base64: the smallest encoding cloud-init can decode, used
    /// for the node-agent binary.
    #[serde(rename = "gz+b64")]
    GzipBase64,
}

impl Encoding {
    fn is_plain(&self) -> bool {
        matches!(self, Self::Plain)
    }
}

/// A Unix permission mode, rendered the way cloud-init documents it: a
/// quoted octal string such as `'0600'`. An unquoted `0600` would reach
/// cloud-init as the YAML 1.1 integer 384 and only work by accident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMode(u32);

impl FileMode {
    /// Executables (the node agent).
    pub const EXECUTABLE: Self = Self(0o755);
    /// World-readable, root-writable files (the systemd unit).
    pub const READABLE: Self = Self(0o644);
    /// Secrets (the enrolment token) and netplan files, which netplan warns
    /// about when looser.
    pub const PRIVATE: Self = Self(0o600);

    /// Refuses bits outside the permission and special bits.
    pub fn new(mode: u32) -> Result<Self, Error> {
        if mode > 0o7777 {
            return Err(Error::InvalidMode { mode });
        }
        Ok(Self(mode))
    }

    /// The numeric mode, for callers comparing with what is on disk.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{:04o}", self.0))
    }
}

/// The `user:group` that owns a file; cloud-init defaults to `root:root`,
/// which is what every hostctl file wants, so it is usually left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    user: String,
    group: String,
}

impl Owner {
    /// Refuses empty names and ':' (the separator cloud-init splits on).
    pub fn new(user: impl Into<String>, group: impl Into<String>) -> Result<Self, Error> {
        let (user, group) = (user.into(), group.into());
        for name in [&user, &group] {
            if name.is_empty() || name.contains([':', '\n', '\0']) {
                return Err(Error::InvalidArgument {
                    arg: name.clone(),
                    context: "a file owner",
                    reason: "must be non-empty, without ':', newline or NUL",
                });
            }
        }
        Ok(Self { user, group })
    }
}

impl Serialize for Owner {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}:{}", self.user, self.group))
    }
}

/// One `write_files` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WriteFile {
    path: String,
    content: String,
    #[serde(skip_serializing_if = "Encoding::is_plain")]
    encoding: Encoding,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<Owner>,
    permissions: FileMode,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    defer: bool,
}

impl WriteFile {
    /// A file whose `content` is already in `encoding` (the caller encoded
    /// it, e.g. [`AgentPayload`](crate::AgentPayload)).
    pub fn new(
        path: impl Into<String>,
        content: impl Into<String>,
        encoding: Encoding,
        permissions: FileMode,
    ) -> Result<Self, Error> {
        let path = path.into();
        let clean = path.starts_with('/')
            && !path.contains(['\0', '\n', '\r'])
            && !path.split('/').any(|part| part == "..");
        if !clean {
            return Err(Error::InvalidPath { path });
        }
        Ok(Self {
            path,
            content: content.into(),
            encoding,
            owner: None,
            permissions,
            defer: false,
        })
    }

    /// A plain-text file.
    pub fn text(
        path: impl Into<String>,
        content: impl Into<String>,
        permissions: FileMode,
    ) -> Result<Self, Error> {
        Self::new(path, content, Encoding::Plain, permissions)
    }

    /// Sets a non-default owner.
    pub fn with_owner(mut self, owner: Owner) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Writes the file in cloud-init's final stage (after users and packages
    /// exist), for files owned by users that cloud-init creates.
    pub fn deferred(mut self) -> Self {
        self.defer = true;
        self
    }

    /// Where cloud-init writes the file; paths are unique per document.
    pub fn path(&self) -> &str {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_rules() {
        assert!(Hostname::new("app1-worker-0").is_ok());
        for bad in ["", "-a", "a-", "App1", "a_b", "a.b", &"x".repeat(64)] {
            assert!(Hostname::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn paths_must_be_clean_and_absolute() {
        for bad in ["etc/x", "/etc/../x", "/etc/x\n", ""] {
            assert!(
                WriteFile::text(bad, "", FileMode::READABLE).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(WriteFile::text("/etc/x..y", "", FileMode::READABLE).is_ok());
    }

    #[test]
    fn modes_render_as_four_digit_octal() {
        assert_eq!(format!("{:04o}", FileMode::PRIVATE.bits()), "0600");
        assert!(FileMode::new(0o4755).is_ok());
        assert!(matches!(
            FileMode::new(0o17777),
            Err(Error::InvalidMode { .. })
        ));
    }

    #[test]
    fn owner_refuses_separator() {
        assert!(Owner::new("root", "root").is_ok());
        assert!(Owner::new("ro:ot", "root").is_err());
        assert!(Owner::new("root", "").is_err());
    }

    #[test]
    fn duplicate_paths_are_refused() {
        let file = WriteFile::text("/etc/a", "x", FileMode::READABLE).unwrap();
        let config = CloudConfig {
            write_files: vec![file.clone(), file],
            ..CloudConfig::default()
        };
        assert!(matches!(config.check(), Err(Error::DuplicatePath { .. })));
    }
}
