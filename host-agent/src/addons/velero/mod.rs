//! Velero on every cluster (issue #20 item 2; platform-addons §2.11):
//! file-system backup with Kopia through the node agent, one
//! BackupStorageLocation `default` on the cluster's bucket prefix of the
//! host's object store, and a daily Schedule (RPO 24 h, kept a week).
//!
//! - **Kopia**, because Restic is on its way out of Velero (1.17–1.18 take
//!   no new Restic backups, 1.19 will not restore them; velero-io/velero
//!   #8072, #8813) and Kopia is 1.18's default uploader anyway.
//! - **File-system backup, no snapshots**: local-path has no CSI snapshot
//!   support, so every pod volume is copied by the node agent
//!   (`defaultVolumesToFsBackup`). That only works for `local` PVs, not
//!   `hostPath` ones, hence the StorageClasses' `defaultVolumeType: local`
//!   ([`crate::cluster_config::manifests::local_path`]).
//! - **The store is on the host**, not on mgmt: losing mgmt must not lose
//!   mgmt's backups. Each cluster writes under its own prefix with its own
//!   key ([`BackupTarget`]), so a cluster cannot read another's backups.
//!
//! Two catalogue entries, both only when the cluster has a backup target
//! (`needs_backup_target`): [`CREDENTIALS`], the S3 key as the Secret the
//! chart mounts, applied first so Velero's pods never wait on a missing
//! volume; then [`VELERO`], the chart. [`recovery`] renders the objects the
//! recovery scenarios apply (a read-only location, Backups, Restores).
//!
//! **What hostctl must keep on the host**: the chart creates Secret
//! `velero-repo-credentials` (the Kopia repository password) on first
//! install. Kopia's repositories in the bucket are encrypted with it, so a
//! rebuilt cluster whose chart generates a new password cannot read its
//! old volume data (the Kubernetes objects in the backup tarballs are still
//! readable). hostctl must copy that Secret to the host after the first
//! install and re-apply it before Velero on a rebuilt cluster — not done
//! here; left to the recovery commands (see docs/platform.md, Velero).

pub mod recovery;

use super::argocd::clusters::PLACEHOLDER;
use super::budget::{Replicas, Resources, Workload, resources_of};
use super::catalogue::{Addon, Chart, ChartRepo, Manifest, Placement, Readiness};
use super::error::AddonError;
use super::render::{Credentials, RenderContext, manifest, no_values};
use serde_json::{Value, json};

pub use recovery::{
    AccessMode, BackupOf, ExistingResourcePolicy, backup, backup_storage_location,
    daily_schedule_name, restore_from_backup, restore_from_schedule, restore_resources_from_backup,
    schedule_name,
};

/// Velero's namespace (PSA `privileged`: the node agent mounts the node's
/// pod volumes through hostPath, which `baseline` refuses).
pub const NAMESPACE: &str = "velero";
/// The Helm release (and the catalogue entry).
pub const RELEASE: &str = "velero";
/// The Secret holding the S3 key, the chart's `credentials.existingSecret`.
pub const CREDENTIALS_SECRET: &str = "velero-s3";
/// Its key: the chart mounts it at `/credentials/cloud` and points
/// `AWS_SHARED_CREDENTIALS_FILE` there.
pub const CREDENTIALS_KEY: &str = "cloud";
/// The Secret Velero reads its Kopia repositories' password from. Velero
/// creates it with a published default (`static-passw0rd`,
/// `pkg/repository/keys/keys.go`; velero-io/velero#6443, #8137) unless it
/// exists, so hostctl creates it first with a password it generated and
/// keeps on the host: the repositories are not readable with a public
/// password, and a rebuilt cluster gets the same one and can read its old
/// backups.
pub const REPOSITORY_SECRET: &str = "velero-repo-credentials";
/// Its key.
pub const REPOSITORY_KEY: &str = "repository-password";
/// The one BackupStorageLocation.
pub const LOCATION: &str = "default";
/// The key of the daily schedule under the chart's `schedules`; the
/// Schedule object is [`schedule_name`]`(RELEASE, DAILY)`.
pub const DAILY: &str = "daily";
/// When it runs (cron, the node's UTC): once a day is the RPO of 24 h.
pub const DAILY_CRON: &str = "0 2 * * *";
/// How long a scheduled backup is kept: a week of dailies.
pub const BACKUP_TTL: &str = "168h";
/// The Secret the chart creates with the Kopia repository password.
pub const REPO_CREDENTIALS_SECRET: &str = "velero-repo-credentials";

/// The velero chart (Velero 1.18.1).
pub const CHART: Chart = Chart {
    repo: ChartRepo::Http("https://vmware-tanzu.github.io/helm-charts"),
    name: "velero",
    version: "12.1.0",
    digest: None,
};

/// The AWS object-store plugin, copied into Velero's plugin directory by
/// an init container. v1.14.x is the line for Velero 1.18.x: the
/// compatibility table of velero-io/velero-plugin-for-aws's README at tag
/// v1.14.2 (commit 5463822f, 2026-06-16) lists "v1.14.x | v1.18.x", and
/// that tag's `go.mod` builds against velero v1.18.0. v1.14.2 is the newest
/// tag in the stored snapshot (June 2026); a later v1.14 patch may exist.
/// The image tag itself was not pulled here: `docker manifest inspect` it
/// once (UNVERIFIED that the tag is published for linux/arm64).
pub const AWS_PLUGIN_IMAGE: &str = "docker.io/velero/velero-plugin-for-aws:v1.14.2";

/// Where the cluster's backups go: its bucket prefix on the host's S3
/// store and the key that may write there. `Debug` never shows the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupTarget {
    /// The store's S3 endpoint, e.g. `http://192.168.64.1:3900` (Garage on
    /// the host's node-network address).
    pub s3_url: String,
    /// The S3 region the store answers to (Garage's `s3_region`, `garage`).
    pub region: String,
    /// This cluster's own bucket (`velero-<cluster>`: the store grants each
    /// cluster's key its bucket only, docs/backup.md).
    pub bucket: String,
    /// This cluster's prefix in it: the cluster's name.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: vault::Secret,
    /// The cluster's Kopia repository password ([`REPOSITORY_SECRET`]).
    pub repository_password: vault::Secret,
    /// `ReadWrite`, except while a rebuilt cluster restores its old backups
    /// (`recover cluster`): then `ReadOnly`, so the new Velero neither
    /// writes (its schedule's first backup, of the empty cluster, would
    /// become the schedule's latest) nor expires what it is restoring.
    pub access: AccessMode,
}

impl BackupTarget {
    /// The credentials file Velero's AWS plugin reads (AWS shared
    /// credentials, profile `default`).
    pub fn credentials_ini(&self) -> String {
        ini(&self.access_key_id, self.secret_access_key.expose())
    }
}

fn ini(access_key_id: &str, secret_access_key: &str) -> String {
    format!(
        "[default]\naws_access_key_id={access_key_id}\naws_secret_access_key={secret_access_key}\n"
    )
}

/// The reference's lab sizes (platform-addons §2.11). Expected use: the
/// server from §6 (80–150 MiB); the node agent at 100 MiB, because Kopia
/// keeps memory it allocated for a backup (velero-io/velero#8138, #8167)
/// and one lab's idle peak over 14 days was 121 MiB (cozystack/cozystack
/// #3824) — idle between daily backups, not the backup itself.
pub const WORKLOADS: &[Workload] = &[
    Workload::one(
        "velero",
        Resources::new(50, 128),
        Resources::new(0, 512),
        100,
    ),
    Workload {
        name: "node-agent",
        // Wherever pods with volumes run: not on tainted control planes.
        replicas: Replicas::EveryUntaintedNode,
        requests: Resources::new(50, 128),
        limits: Resources::new(0, 1024),
        expected_mib: 100,
    },
];

/// The plugin's init container only copies a binary.
const PLUGIN_RESOURCES: Workload = Workload::one(
    "velero-plugin-for-aws",
    Resources::new(10, 32),
    Resources::new(0, 64),
    0,
);

/// The S3 key as the Secret the chart mounts, before the chart.
pub const CREDENTIALS: Addon = Addon {
    name: "velero-credentials",
    summary: "the cluster's key on the host's object store, as the Secret Velero reads",
    chart: None,
    namespace: NAMESPACE,
    placement: Placement::All,
    depends_on: &[],
    after_mgmt: &[],
    needs_backup_target: true,
    values: no_values,
    objects: credentials_objects,
    readiness: &[],
    workloads: &[],
    hook: None,
};

/// Velero itself.
pub const VELERO: Addon = Addon {
    name: RELEASE,
    summary: "Velero: daily Kopia file-system backups to the host's object store",
    chart: Some(CHART),
    namespace: NAMESPACE,
    placement: Placement::All,
    depends_on: &["velero-credentials"],
    after_mgmt: &[],
    needs_backup_target: true,
    values,
    objects: super::render::no_objects,
    readiness: &[
        Readiness::Crd("backupstoragelocations.velero.io"),
        Readiness::Crd("schedules.velero.io"),
        Readiness::Deployment("velero"),
        Readiness::DaemonSet("node-agent"),
    ],
    workloads: WORKLOADS,
    hook: None,
};

fn target<'a>(ctx: &RenderContext<'a>, addon: &str) -> Result<&'a BackupTarget, AddonError> {
    ctx.backup.ok_or_else(|| AddonError::Topology {
        addon: addon.to_owned(),
        reason: format!(
            "cluster {} has no backup target (the host's object store and its key)",
            ctx.cluster
        ),
    })
}

fn values(ctx: &RenderContext<'_>) -> Result<Value, AddonError> {
    let target = target(ctx, RELEASE)?;
    Ok(chart_values(target, target.access))
}

/// The chart's values (keys as in velero 12.1.0's `values.yaml`) for
/// `target`, its location in `mode`: `ReadWrite` in steady state,
/// `ReadOnly` while a rebuilt cluster restores from its old backups (so
/// nothing there is written or garbage-collected before the restore).
pub fn chart_values(target: &BackupTarget, mode: AccessMode) -> Value {
    let plugin = json!({
        "name": "velero-plugin-for-aws",
        "image": AWS_PLUGIN_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "resources": PLUGIN_RESOURCES.resources_value(),
        "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
    });
    json!({
        "initContainers": [plugin],
        "deployNodeAgent": true,
        "snapshotsEnabled": false,
        "credentials": {"useSecret": true, "existingSecret": CREDENTIALS_SECRET},
        "configuration": {
            "uploaderType": "kopia",
            "defaultVolumesToFsBackup": true,
            "backupStorageLocation": [{
                "name": LOCATION,
                "provider": "aws",
                "bucket": target.bucket,
                "prefix": target.prefix,
                "default": true,
                "accessMode": mode.as_str(),
                "config": recovery::location_config(target),
            }],
        },
        "schedules": {DAILY: {
            "schedule": DAILY_CRON,
            "template": recovery::schedule_template(DAILY),
        }},
        "resources": resources_of(WORKLOADS, "velero"),
        // No tolerations (the chart's default): the node agent runs where
        // pods with volumes can, not on a tainted control plane.
        "nodeAgent": {"resources": resources_of(WORKLOADS, "node-agent")},
    })
}

/// The Secret `velero-s3`: the ini with the key when installing, with a
/// marked placeholder for the secret in review renderings.
fn credentials_objects(ctx: &RenderContext<'_>) -> Result<Vec<Manifest>, AddonError> {
    let target = target(ctx, CREDENTIALS.name)?;
    let cloud = match ctx.credentials {
        Credentials::Placeholder => ini(&target.access_key_id, PLACEHOLDER),
        Credentials::Mint(_) => target.credentials_ini(),
    };
    let password = match ctx.credentials {
        Credentials::Placeholder => PLACEHOLDER,
        Credentials::Mint(_) => target.repository_password.expose(),
    };
    Ok(vec![
        manifest(
            "10-velero-s3.yaml",
            "The cluster's own key on the host's object store (its bucket prefix only),\n\
             as the AWS credentials file Velero and its node agent read.",
            &[credentials_secret(&cloud)],
        )?,
        manifest(
            "11-velero-repo-credentials.yaml",
            "The Kopia repositories' password, generated and kept by hostctl on the host\n\
             (Velero would otherwise create it with its published default).",
            &[repository_secret(password)],
        )?,
    ])
}

fn repository_secret(password: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": REPOSITORY_SECRET, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "type": "Opaque",
        "stringData": {REPOSITORY_KEY: password},
    })
}

fn credentials_secret(cloud: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": CREDENTIALS_SECRET, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "type": "Opaque",
        "stringData": {CREDENTIALS_KEY: cloud},
    })
}

#[cfg(test)]
mod tests;
