//! A deleted resource (spec §10.3: "deleted resource → ArgoCD sync",
//! 5 min; issue 20 item 4): bring one object back from whoever owns it.
//! If one of Argo CD's Applications on mgmt tracks it (it is in the
//! Application's `status.resources` for this cluster's destination), the
//! source is that Application and the recovery asks Argo CD to sync just
//! that resource; otherwise the source is a Completed Backup of Velero's
//! daily schedule on the cluster (the newest, or a named one), restored
//! for that resource type and namespace without touching what exists.
//!
//! This module holds the parts that need no cluster: what KIND/NAME
//! means, the wrong-cluster rule, the choice of the source, the objects
//! written (the sync operation, the Restore) and how their status is read;
//! `commands::recover::resource` runs the steps against the API servers.

use crate::addons::velero::{ExistingResourcePolicy, restore_resources_from_backup};
use crate::cluster_api::resources::{KINDS, Kind};
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;

/// The spec's recovery-time objective for a deleted resource: its
/// recovery table's row "deleted resource → ArgoCD sync (5 min)" (§10.3
/// as this project numbers it; in the seed `SPEC.md` the table is in §11,
/// "Backup and DR").
pub const RTO: Duration = Duration::from_secs(5 * 60);
/// The user Argo CD records as having started the sync, and the
/// operation's `info` entry that says which recovery asked for it.
pub const INITIATED_BY: &str = "hostctl";
const INFO_NAME: &str = "hostctl-recovery";

/// The steps, in order: the record's id and the printed title.
pub const STEPS: [(&str, &str); 4] = [
    ("cluster", "check the API server is the cluster's"),
    ("choose", "choose the source"),
    ("restore", "restore the resource"),
    ("check", "check it exists again"),
];

/// Why a resource recovery stopped; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// KIND/NAME does not name something hostctl can address.
    #[error("{0}")]
    Usage(String),
    /// The resource is there: nothing to recover.
    #[error(
        "{target} exists on {cluster}: nothing to recover (this scenario brings back what \
         was deleted; it does not roll back a changed object)"
    )]
    Present { target: String, cluster: String },
    /// No owner and no backup.
    #[error(
        "no source for {target} on {cluster}: no Argo CD Application on mgmt tracks it and \
         {why}. Take a backup while the cluster answers (`velero backup create --from-schedule \
         {schedule} -n velero`; the daily schedule runs at 02:00 UTC), or re-create the \
         resource from its manifest"
    )]
    NoSource {
        target: String,
        cluster: String,
        why: String,
        schedule: String,
    },
    /// `--backup NAME` is not one to restore from.
    #[error("backup velero/{name} on {cluster} {why}; `velero backup get -n velero` lists them")]
    BadBackup {
        name: String,
        cluster: String,
        why: String,
    },
    /// A rerun named another source than the interrupted run chose.
    #[error(
        "an interrupted recovery of {target} on {cluster} restores from {recorded}, not \
         {asked}; run it again without --backup to finish it, or add --restart to start \
         over"
    )]
    OtherSource {
        target: String,
        cluster: String,
        recorded: String,
        asked: String,
    },
}

impl ResourceError {
    /// A refusal (the user must change something) rather than a failure.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, ResourceError::Usage(_))
    }
}

/// The object to bring back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static Kind,
    /// `None` for a cluster-scoped kind.
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    /// `KIND/NAME` as kubectl takes it — the kind, its plural, or either
    /// with `.group` (`deployment/web`, `deployments.apps/web`,
    /// `ConfigMap/x`), case-insensitive — in `namespace` (default
    /// `default` for a namespaced kind; refused for a cluster-scoped one).
    /// Kinds are hostctl's static table ([`KINDS`]): no discovery.
    pub fn parse(spec: &str, namespace: Option<&str>) -> Result<Target, ResourceError> {
        let usage = |m: String| ResourceError::Usage(m);
        let (kind, name) = spec
            .split_once('/')
            .filter(|(k, n)| !k.is_empty() && !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| usage(format!("{spec:?}: expected KIND/NAME, e.g. deployment/web")))?;
        let kind_lc = kind.to_ascii_lowercase();
        let (word, group) = match kind_lc.split_once('.') {
            Some((w, g)) => (w.to_owned(), Some(g.to_owned())),
            None => (kind_lc.clone(), None),
        };
        let found: Vec<&'static Kind> = KINDS
            .iter()
            .filter(|k| k.kind.eq_ignore_ascii_case(&word) || k.plural == word)
            .filter(|k| group.as_deref().is_none_or(|g| k.group == g))
            .collect();
        let kind = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(usage(format!(
                    "{kind:?} is not a kind hostctl knows (its table of the kinds it applies: \
                     {})",
                    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
                )));
            }
            many => {
                return Err(usage(format!(
                    "{kind:?} is ambiguous: {}; add the group (KIND.GROUP/NAME)",
                    many.iter()
                        .map(|k| velero_name(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        let namespace = match (kind.namespaced, namespace) {
            (true, ns) => Some(ns.unwrap_or("default").to_owned()),
            (false, None) => None,
            (false, Some(ns)) => {
                return Err(usage(format!(
                    "{} is cluster-scoped: drop -n {ns}",
                    kind.kind
                )));
            }
        };
        Ok(Target {
            kind,
            namespace,
            name: name.to_owned(),
        })
    }

    /// The record's scenario: one record per object, so recoveries of two
    /// objects do not share a source. `_` is in no Kubernetes name, kind or
    /// group, so the parts cannot run together.
    pub fn scenario(&self) -> String {
        format!(
            "resource_{}_{}_{}",
            self.namespace.as_deref().unwrap_or(""),
            velero_name(self.kind),
            self.name
        )
    }

    /// The object's REST path.
    pub fn path(&self) -> String {
        let k = self.kind;
        let base = if k.group.is_empty() {
            format!("/api/{}", k.version)
        } else {
            format!("/apis/{}/{}", k.group, k.version)
        };
        match &self.namespace {
            Some(ns) => format!("{base}/namespaces/{ns}/{}/{}", k.plural, self.name),
            None => format!("{base}/{}/{}", k.plural, self.name),
        }
    }

    /// Velero's name of the resource type (`deployments.apps`).
    pub fn velero_resource(&self) -> String {
        velero_name(self.kind)
    }
}

impl fmt::Display for Target {
    /// `deployments.apps shop/web`, `clusterroles.rbac.authorization.k8s.io x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", velero_name(self.kind), self.name),
            None => write!(f, "{} {}", velero_name(self.kind), self.name),
        }
    }
}

fn velero_name(k: &Kind) -> String {
    if k.group.is_empty() {
        k.plural.to_owned()
    } else {
        format!("{}.{}", k.plural, k.group)
    }
}

/// What the recovery restores from, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An Argo CD Application on mgmt (`argocd:<name>`).
    Application(String),
    /// A Velero Backup on the cluster (`velero:<name>`).
    Backup(String),
}

impl Source {
    /// The record's text back.
    pub fn parse(recorded: &str) -> Option<Source> {
        match recorded.split_once(':')? {
            ("argocd", app) if !app.is_empty() => Some(Source::Application(app.to_owned())),
            ("velero", backup) if !backup.is_empty() => Some(Source::Backup(backup.to_owned())),
            _ => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Application(a) => write!(f, "argocd:{a}"),
            Source::Backup(b) => write!(f, "velero:{b}"),
        }
    }
}

/// Where Argo CD's Applications send objects to `cluster`: the cluster
/// Secret's name (the topology's name) or its server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub name: String,
    pub server: String,
}

impl Destination {
    fn matches(&self, app: &Value) -> bool {
        let d = &app["spec"]["destination"];
        let trim = |s: &str| s.trim_end_matches('/').to_owned();
        d["name"].as_str() == Some(self.name.as_str())
            || d["server"].as_str().map(trim) == Some(trim(&self.server))
    }
}

/// The Application (by name) that tracks `target` on `destination`, if
/// any: the first by name when several do (Argo CD then warns of a shared
/// resource itself). A deleted object stays in `status.resources` as
/// `OutOfSync`/`Missing`, which is how its owner is found.
pub fn owning_application(
    apps: &[Value],
    target: &Target,
    destination: &Destination,
) -> Option<String> {
    let mut owners: Vec<String> = apps
        .iter()
        .filter(|app| destination.matches(app))
        .filter(|app| {
            app["status"]["resources"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| tracks(r, target)))
        })
        .filter_map(|app| app["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    owners.sort();
    owners.into_iter().next()
}

/// Whether a `status.resources[]` entry (or a sync resource) is `target`.
fn tracks(r: &Value, target: &Target) -> bool {
    r["group"].as_str().unwrap_or("") == target.kind.group
        && r["kind"].as_str() == Some(target.kind.kind)
        && r["name"].as_str() == Some(target.name.as_str())
        && r["namespace"].as_str().unwrap_or("") == target.namespace.as_deref().unwrap_or("")
}

/// The merge patch that asks Argo CD to sync only `target`: the
/// Application's `operation` (what `argocd app sync --resource` writes),
/// started by [`INITIATED_BY`] and marked with the recovery's `id`, so a
/// rerun recognises its own operation.
pub fn sync_operation(target: &Target, id: &str) -> Value {
    let mut resource = json!({
        "group": target.kind.group,
        "kind": target.kind.kind,
        "name": target.name,
    });
    if let Some(ns) = &target.namespace {
        resource["namespace"] = json!(ns);
    }
    json!({"operation": {
        "initiatedBy": {"username": INITIATED_BY},
        "info": [{"name": INFO_NAME, "value": id}],
        "sync": {"resources": [resource]},
    }})
}

fn is_ours(operation: &Value, id: &str) -> bool {
    operation["initiatedBy"]["username"].as_str() == Some(INITIATED_BY)
        && operation["info"].as_array().is_some_and(|info| {
            info.iter()
                .any(|i| i["name"].as_str() == Some(INFO_NAME) && i["value"].as_str() == Some(id))
        })
}

/// Where the Application's sync stands for the recovery `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    /// No operation of ours and none pending: request it.
    Request,
    /// Another operation is pending or running: wait for it to end.
    Busy(String),
    /// Ours is pending or running (its phase).
    Running(String),
    Succeeded,
    /// Ours ended `Failed`/`Error`, with Argo CD's message.
    Failed {
        phase: String,
        message: String,
    },
}

/// Reads `app` for the recovery `id`.
pub fn sync_state(app: &Value, id: &str) -> Sync {
    let pending = &app["operation"];
    let state = &app["status"]["operationState"];
    let phase = state["phase"].as_str().unwrap_or("").to_owned();
    if !pending.is_null() {
        return if is_ours(pending, id) {
            Sync::Running("requested".into())
        } else {
            Sync::Busy("an operation is pending".into())
        };
    }
    let running = matches!(phase.as_str(), "Running" | "Terminating");
    if !is_ours(&state["operation"], id) {
        return if running {
            Sync::Busy(format!("another operation is {phase}"))
        } else {
            Sync::Request
        };
    }
    match phase.as_str() {
        "Succeeded" => Sync::Succeeded,
        "Failed" | "Error" => Sync::Failed {
            phase,
            message: state["message"].as_str().unwrap_or("").to_owned(),
        },
        _ => Sync::Running(phase),
    }
}

/// The name of the recovery's `attempt`th Restore (from 1): fixed by the
/// record's start, so a rerun finds the Restore the first run created
/// instead of creating another; a new attempt only after a failed one.
/// At most 63 characters (Velero labels restored objects with it).
pub fn restore_name(target: &Target, started_at_unix: u64, attempt: u32) -> String {
    let short: String = target.name.chars().take(30).collect();
    let short = short.trim_end_matches(['-', '.']);
    format!("hostctl-{short}-{started_at_unix}-{attempt}")
}

/// The recovery's id in Argo CD's operation (the same for every attempt).
pub fn sync_id(target: &Target, started_at_unix: u64) -> String {
    format!("{}@{started_at_unix}", target.scenario())
}

/// The Restore of `target` from `backup`: its type in its namespace,
/// existing objects left alone, so only what is missing comes back.
pub fn restore(name: &str, backup: &str, target: &Target) -> Value {
    let resource = target.velero_resource();
    let namespaces: Vec<&str> = match &target.namespace {
        Some(ns) => vec![ns.as_str()],
        None => vec!["*"],
    };
    let mut r = restore_resources_from_backup(
        name,
        backup,
        &namespaces,
        &[resource.as_str()],
        target.namespace.is_none(),
        ExistingResourcePolicy::None,
    );
    r["metadata"]["annotations"] = json!({"hostctl.dev/recovers": target.to_string()});
    r
}

#[cfg(test)]
mod tests;
