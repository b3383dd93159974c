//! The Velero objects the recovery scenarios apply (platform-addons §5):
//! the location read-only while a rebuilt cluster restores, an on-demand
//! Backup, and Restores of a schedule's latest backup or of one backup.
//! Kinds and fields are velero.io/v1 as Velero 1.18.1's CRDs (chart
//! 12.1.0's `crds/`) define them; tests validate every object against them.
//!
//! Every object lives in Velero's namespace: Velero only acts on its
//! objects there.

use super::{BACKUP_TTL, RELEASE};
use super::{BackupTarget, CREDENTIALS_KEY, CREDENTIALS_SECRET, DAILY, LOCATION, NAMESPACE};
use serde_json::{Value, json};

/// What a BackupStorageLocation lets Velero do with its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    /// Steady state: backups are written and expired ones deleted.
    ReadWrite,
    /// A rebuilt cluster reading its old backups: nothing is written or
    /// garbage-collected until the restore is done and the mode flipped.
    ReadOnly,
}

impl AccessMode {
    /// The CRD's enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::ReadWrite => "ReadWrite",
            AccessMode::ReadOnly => "ReadOnly",
        }
    }
}

/// What a Restore does with an object that already exists in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingResourcePolicy {
    /// Leave it (Velero's default: a warning per object).
    None,
    /// Patch it to the backed-up state: what "a deleted or changed
    /// resource" recovery wants.
    Update,
}

impl ExistingResourcePolicy {
    /// The value Velero reads (`velero restore create
    /// --existing-resource-policy`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExistingResourcePolicy::None => "none",
            ExistingResourcePolicy::Update => "update",
        }
    }
}

/// The chart's `velero.fullname` for release `release` (`_helpers.tpl`):
/// the release name when it contains the chart name `velero`, else
/// `<release>-velero`; at most 63 characters, no trailing dash.
pub fn fullname(release: &str) -> String {
    let name = if release.contains("velero") {
        release.to_owned()
    } else {
        format!("{release}-velero")
    };
    truncate_63(&name)
}

/// The Schedule the chart creates for key `key` of its `schedules` in
/// release `release`: `<fullname>-<key>` (`templates/schedule.yaml`), e.g.
/// `velero-daily` for hostctl's daily schedule.
pub fn schedule_name(release: &str, key: &str) -> String {
    format!("{}-{key}", fullname(release))
}

/// The name of hostctl's daily Schedule.
pub fn daily_schedule_name() -> String {
    schedule_name(RELEASE, DAILY)
}

fn truncate_63(name: &str) -> String {
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches('-').to_owned()
}

/// The location's `config` for the AWS plugin against an S3-compatible
/// store: path-style addressing (no bucket DNS names on the host), the
/// store's URL and region, and no request checksums — the aws plugin
/// (≥ 1.10) sends trailing checksums that S3-compatible stores refuse
/// (velero-io/velero#7696, #8742).
pub fn location_config(target: &BackupTarget) -> Value {
    json!({
        "region": target.region,
        "s3ForcePathStyle": "true",
        "s3Url": target.s3_url,
        "checksumAlgorithm": "",
    })
}

/// The location `default` as an object, in `mode`: the same location the
/// chart renders from [`super::chart_values`], for the recovery commands
/// to flip to `ReadOnly` before a restore and back after.
pub fn backup_storage_location(target: &BackupTarget, mode: AccessMode) -> Value {
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "BackupStorageLocation",
        "metadata": {"name": LOCATION, "namespace": NAMESPACE},
        "spec": {
            "provider": "aws",
            "default": true,
            "accessMode": mode.as_str(),
            "credential": {"name": CREDENTIALS_SECRET, "key": CREDENTIALS_KEY},
            "objectStorage": {"bucket": target.bucket, "prefix": target.prefix},
            "config": location_config(target),
        },
    })
}

/// A Backup's spec: `namespaces` (`*` for all), every pod volume copied
/// by the node agent, kept for `ttl`.
pub fn backup_spec(namespaces: &[&str], ttl: &str) -> Value {
    json!({
        "includedNamespaces": namespaces,
        "defaultVolumesToFsBackup": true,
        "snapshotVolumes": false,
        "storageLocation": LOCATION,
        "ttl": ttl,
    })
}

/// What an on-demand Backup copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupOf<'a> {
    /// As the chart's schedule `key` does (`velero backup create
    /// --from-schedule`): its spec, and labelled with the Schedule so that
    /// a Restore of the schedule's latest backup may pick it.
    Schedule(&'a str),
    /// These namespaces, kept as long as a scheduled backup.
    Namespaces(&'a [&'a str]),
}

/// An on-demand Backup called `name`.
pub fn backup(name: &str, of: BackupOf<'_>) -> Value {
    let mut metadata = json!({"name": name, "namespace": NAMESPACE});
    let spec = match of {
        BackupOf::Schedule(key) => {
            metadata["labels"] = json!({"velero.io/schedule-name": schedule_name(RELEASE, key)});
            schedule_template(key)
        }
        BackupOf::Namespaces(namespaces) => backup_spec(namespaces, BACKUP_TTL),
    };
    json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": metadata, "spec": spec})
}

/// The backup template of hostctl's schedule `key` (the only one is
/// [`DAILY`]; any other key gets the same all-namespaces template).
pub(super) fn schedule_template(_key: &str) -> Value {
    backup_spec(&["*"], BACKUP_TTL)
}

/// The Schedule the chart renders for `key` (`templates/schedule.yaml`):
/// for checking hostctl's values against the Schedule CRD and for reading
/// what the cluster should have.
pub fn schedule(key: &str, cron: &str) -> Value {
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": {"name": schedule_name(RELEASE, key), "namespace": NAMESPACE},
        "spec": {"schedule": cron, "template": schedule_template(key)},
    })
}

/// A Restore called `name` of the latest completed backup of Schedule
/// `schedule_name` (see [`schedule_name`]), limited to
/// `included_namespaces` (`*` for all).
pub fn restore_from_schedule(
    name: &str,
    schedule_name: &str,
    included_namespaces: &[&str],
    existing: ExistingResourcePolicy,
) -> Value {
    restore(
        name,
        json!({"scheduleName": schedule_name}),
        included_namespaces,
        existing,
    )
}

/// A Restore called `name` of Backup `backup_name`.
pub fn restore_from_backup(
    name: &str,
    backup_name: &str,
    included_namespaces: &[&str],
    existing: ExistingResourcePolicy,
) -> Value {
    restore(
        name,
        json!({"backupName": backup_name}),
        included_namespaces,
        existing,
    )
}

/// A Restore called `name` of Backup `backup_name` limited to the
/// resource types `included_resources` (Velero's resource names,
/// `deployments.apps`, `configmaps`) in `included_namespaces`, labelled as
/// hostctl's: the "deleted resource" recovery
/// ([`crate::recover::resource`]). Velero has no filter by object name,
/// so with [`ExistingResourcePolicy::None`] everything of those types the
/// backup holds and the cluster lacks comes back, and nothing present is
/// changed. `cluster_scoped` resources need Velero's cluster resources
/// included (and every namespace considered); for namespaced ones Velero's
/// default applies (the namespace itself comes back if it is gone too).
pub fn restore_resources_from_backup(
    name: &str,
    backup_name: &str,
    included_namespaces: &[&str],
    included_resources: &[&str],
    cluster_scoped: bool,
    existing: ExistingResourcePolicy,
) -> Value {
    let mut restore = restore(
        name,
        json!({"backupName": backup_name}),
        included_namespaces,
        existing,
    );
    restore["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "hostctl"});
    restore["spec"]["includedResources"] = json!(included_resources);
    if cluster_scoped {
        restore["spec"]["includeClusterResources"] = json!(true);
    }
    restore
}

fn restore(
    name: &str,
    source: Value,
    included_namespaces: &[&str],
    existing: ExistingResourcePolicy,
) -> Value {
    let mut spec = source;
    spec["includedNamespaces"] = json!(included_namespaces);
    spec["existingResourcePolicy"] = json!(existing.as_str());
    json!({
        "apiVersion": "velero.io/v1",
        "kind": "Restore",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    })
}
