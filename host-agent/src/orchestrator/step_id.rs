//! A step's identity: what it does ([`StepKind`]) and what it acts on
//! ([`Subject`]: the host, a node, a cluster or a cluster's add-on). It is written `kind/subject`
//! (`launch/app1-cp`, `kubeadm-init/app1`) in `up-state.json`, in the
//! progress lines and in the span names, exactly as when it was a plain
//! string, so files written before the type existed read back unchanged.
//!
//! The kind alone says whether the subject names a node or a cluster (a
//! kind is declared per node or per cluster), so an id cannot be built or
//! read with the wrong sort of subject, and nothing downstream (the trace
//! observer, the summary) has to guess.

use super::steps::StepKind;
use super::steps::declare::Per;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

/// A node's name as a step names it (cheap to clone: ids are map keys).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(Arc<str>);

/// A cluster's name as a step names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterName(Arc<str>);

macro_rules! name_type {
    ($name:ident) => {
        impl $name {
            pub fn new(name: &str) -> $name {
                $name(Arc::from(name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
name_type!(NodeName);
name_type!(ClusterName);

/// An add-on on a cluster, written `cluster/addon` (`mgmt/argocd`); kept
/// as that one text so a [`StepId`] stays small.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddonSubject {
    text: Arc<str>,
}

impl AddonSubject {
    /// `cluster/addon` read back; a text without `/` names no add-on.
    pub fn parse(text: &str) -> Option<AddonSubject> {
        let (cluster, addon) = text.split_once('/')?;
        (!cluster.is_empty() && !addon.is_empty() && !addon.contains('/')).then(|| AddonSubject {
            text: Arc::from(text),
        })
    }

    pub fn new(cluster: &str, addon: &str) -> AddonSubject {
        AddonSubject {
            text: Arc::from(format!("{cluster}/{addon}")),
        }
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        self.text.split_once('/').map_or(&*self.text, |(c, _)| c)
    }

    /// `cluster/addon`.
    pub fn name(&self) -> &str {
        &self.text
    }

    /// The add-on's catalogue name.
    pub fn addon(&self) -> &str {
        self.text.split_once('/').map_or("", |(_, addon)| addon)
    }
}

/// The one name a host step's subject has (`mirrors/host`): there is one
/// host per home.
pub const HOST: &str = "host";

/// What a step acts on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// The machine hostctl runs on (its Docker services).
    Host,
    Node(NodeName),
    Cluster(ClusterName),
    Addon(AddonSubject),
}

impl Subject {
    /// The node's, cluster's or `cluster/addon` name (the progress line's label).
    pub fn name(&self) -> &str {
        match self {
            Subject::Host => HOST,
            Subject::Node(n) => n.as_str(),
            Subject::Cluster(c) => c.as_str(),
            Subject::Addon(a) => a.name(),
        }
    }

    /// Whether the step acts on a cluster (itself or one of its add-ons):
    /// such steps go in the summary's cluster table.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Subject::Cluster(_) | Subject::Addon(_))
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A step's name, `kind/subject` (see the module documentation).
///
/// Equality, order and hash are those of the text: `up-state.json` is a
/// map ordered by it, and that order must not change with the type.
#[derive(Clone)]
pub struct StepId {
    kind: StepKind,
    subject: Subject,
    text: Arc<str>,
}

/// A step name that is not `kind/subject` with a known kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepIdError {
    #[error("step name {0:?} is not kind/subject")]
    Malformed(String),
    #[error("unknown step kind {kind:?} in {id:?} (known: {known})")]
    UnknownKind {
        kind: String,
        id: String,
        known: String,
    },
}

impl StepId {
    /// The `kind` step of `subject`, a node, a cluster or `cluster/addon`
    /// as the kind is declared. An add-on subject without its `/` (only a
    /// damaged state file has one) is kept whole as the cluster part.
    pub fn new(kind: StepKind, subject: &str) -> StepId {
        let subject = match kind.per() {
            Per::HostMirrors | Per::HostObjectStore => Subject::Host,
            Per::Node | Per::Worker => Subject::Node(NodeName::new(subject)),
            Per::Cluster => Subject::Cluster(ClusterName::new(subject)),
            Per::Addon => Subject::Addon(
                AddonSubject::parse(subject).unwrap_or_else(|| AddonSubject::new(subject, "")),
            ),
        };
        let text = Arc::from(format!("{kind}/{subject}"));
        StepId {
            kind,
            subject,
            text,
        }
    }

    /// What the step does (`launch`), for grouping.
    pub fn kind(&self) -> StepKind {
        self.kind
    }

    /// What the step acts on (`app1-cp`), for the progress line.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// `kind/subject`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for StepId {
    type Err = StepIdError;

    fn from_str(text: &str) -> Result<StepId, StepIdError> {
        let malformed = || StepIdError::Malformed(text.to_owned());
        let (kind, subject) = text.split_once('/').ok_or_else(malformed)?;
        if subject.is_empty() {
            return Err(malformed());
        }
        let kind_name = kind;
        let kind = StepKind::from_name(kind_name).ok_or_else(|| StepIdError::UnknownKind {
            kind: kind_name.to_owned(),
            id: text.to_owned(),
            known: StepKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let fits = match kind.per() {
            Per::Addon => AddonSubject::parse(subject).is_some(),
            Per::HostMirrors | Per::HostObjectStore => subject == HOST,
            Per::Node | Per::Worker | Per::Cluster => true,
        };
        if !fits {
            return Err(malformed());
        }
        Ok(StepId::new(kind, subject))
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl PartialEq for StepId {
    fn eq(&self, other: &StepId) -> bool {
        self.text == other.text
    }
}

impl Eq for StepId {}

impl PartialOrd for StepId {
    fn partial_cmp(&self, other: &StepId) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StepId {
    fn cmp(&self, other: &StepId) -> Ordering {
        self.text.cmp(&other.text)
    }
}

impl Hash for StepId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl Serialize for StepId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for StepId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StepId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_as_written_with_the_subject_the_kind_says() {
        for text in ["launch/app1-cp", "kubeadm-join/app1-worker-0", "cni/app1"] {
            let id: StepId = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
            assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
        }
        let join: StepId = "kubeadm-join/app1-worker-0".parse().unwrap();
        assert_eq!(join.kind(), StepKind::KubeadmJoin);
        assert_eq!(
            join.subject(),
            &Subject::Node(NodeName::new("app1-worker-0"))
        );
        let cni: StepId = "cni/app1".parse().unwrap();
        assert_eq!(cni.subject(), &Subject::Cluster(ClusterName::new("app1")));
    }

    #[test]
    fn addon_ids_name_their_cluster_and_addon() {
        let id: StepId = "addon/mgmt/argocd".parse().unwrap();
        assert_eq!(id.to_string(), "addon/mgmt/argocd");
        let Subject::Addon(subject) = id.subject() else {
            panic!("{id:?} is not an add-on step");
        };
        assert_eq!(subject.cluster(), "mgmt");
        assert_eq!(subject.addon(), "argocd");
        assert!(id.subject().is_cluster());
        for bad in ["addon/mgmt", "addon/mgmt/", "addon//argocd", "addon/a/b/c"] {
            let err = bad.parse::<StepId>().unwrap_err().to_string();
            assert!(err.contains("is not kind/subject"), "{bad}: {err}");
        }
    }

    #[test]
    fn host_ids_name_the_host_only() {
        let id: StepId = "mirrors/host".parse().unwrap();
        assert_eq!(id.subject(), &Subject::Host);
        assert_eq!(id.to_string(), "mirrors/host");
        assert!(!id.subject().is_cluster());
        let err = "mirrors/app1-cp".parse::<StepId>().unwrap_err().to_string();
        assert!(err.contains("is not kind/subject"), "{err}");
    }

    #[test]
    fn ids_order_as_their_text() {
        let mut ids: Vec<StepId> = ["render/a", "addons/c", "launch/b", "kubeconfig/c"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        ids.sort();
        let texts: Vec<&str> = ids.iter().map(StepId::as_str).collect();
        assert_eq!(texts, ["addons/c", "kubeconfig/c", "launch/b", "render/a"]);
    }

    #[test]
    fn a_bad_id_says_what_is_wrong() {
        let err = "lunch/app1-cp".parse::<StepId>().unwrap_err().to_string();
        assert!(err.contains("unknown step kind \"lunch\""), "{err}");
        assert!(err.contains("render, launch, enrol"), "{err}");
        for bad in ["launch", "launch/"] {
            let err = bad.parse::<StepId>().unwrap_err().to_string();
            assert!(err.contains("is not kind/subject"), "{err}");
        }
    }
}
