use super::*;
use crate::addons::catalogue::Available;
use crate::addons::render::{PlatformSource, addons_for, render};
use topology::ClusterRole;

const SECRET_KEY: &str = "b7f1-secret-access-key-do-not-print";

fn target(prefix: &str) -> BackupTarget {
    BackupTarget {
        s3_url: "http://192.168.64.1:3900".into(),
        region: "garage".into(),
        bucket: "velero".into(),
        prefix: prefix.into(),
        access_key_id: "GK31c2f218a2e44f485b94239e".into(),
        secret_access_key: vault::Secret::new(SECRET_KEY),
        repository_password: vault::Secret::new("kopia-password-of-the-test"),
        access: crate::addons::velero::AccessMode::ReadWrite,
    }
}

#[test]
fn velero_is_planned_on_every_role_only_with_a_backup_target() {
    for role in [ClusterRole::Mgmt, ClusterRole::App] {
        let with: Vec<&str> = Addon::for_role(role, Available::new(true, true))
            .map(|a| a.name)
            .collect();
        let without: Vec<&str> = Addon::for_role(role, Available::new(true, false))
            .map(|a| a.name)
            .collect();
        for name in [CREDENTIALS.name, VELERO.name] {
            assert!(with.contains(&name), "{role:?}: {name} missing");
            assert!(
                !without.contains(&name),
                "{role:?}: {name} without a target"
            );
        }
        // Nothing else depends on the target.
        assert_eq!(with.len(), without.len() + 2, "{role:?}");
        // The Secret comes before the chart that mounts it.
        let at = |n: &str| with.iter().position(|a| *a == n);
        assert!(at(CREDENTIALS.name) < at(VELERO.name));
    }
}

#[test]
fn the_render_context_decides_the_plan_and_velero_refuses_to_render_without_a_target() {
    let resolved = topology::default_topology().resolve(None).unwrap();
    let platform = PlatformSource::served_by_host(&resolved, None);
    let target = target("app1");
    let mut ctx = RenderContext {
        resolved: &resolved,
        cluster: "app1",
        credentials: Credentials::Placeholder,
        platform: &platform,
        backup: None,
    };
    assert!(!addons_for(&ctx).iter().any(|a| a.name == RELEASE));
    let err = render(&VELERO, &ctx).expect_err("no target");
    assert!(err.to_string().contains("no backup target"), "{err}");
    ctx.backup = Some(&target);
    assert!(addons_for(&ctx).iter().any(|a| a.name == RELEASE));
    let rendered = render(&VELERO, &ctx).expect("renders");
    let values = rendered.values.unwrap_or_default();
    assert!(values.contains("kopia"), "{values}");
    assert!(values.contains("accessMode: ReadWrite"), "{values}");
    // A cluster being recovered gets its location read-only.
    let recovering = BackupTarget {
        access: AccessMode::ReadOnly,
        ..target.clone()
    };
    ctx.backup = Some(&recovering);
    let values = render(&VELERO, &ctx)
        .expect("renders")
        .values
        .unwrap_or_default();
    assert!(values.contains("accessMode: ReadOnly"), "{values}");
}

#[test]
fn the_key_never_shows_in_debug_output() {
    let target = target("mgmt");
    let shown = format!("{target:?} {:?}", Some(&target));
    assert!(!shown.contains(SECRET_KEY), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn the_credentials_file_is_an_aws_ini_with_the_default_profile() {
    assert_eq!(
        target("app2").credentials_ini(),
        format!(
            "[default]\naws_access_key_id=GK31c2f218a2e44f485b94239e\naws_secret_access_key={SECRET_KEY}\n"
        )
    );
}

#[test]
fn schedule_names_follow_the_charts_fullname() {
    assert_eq!(fullname_of("velero"), "velero");
    assert_eq!(schedule_name("velero", "daily"), "velero-daily");
    assert_eq!(daily_schedule_name(), "velero-daily");
    assert_eq!(schedule_name("my-velero-x", "daily"), "my-velero-x-daily");
    assert_eq!(schedule_name("backup", "daily"), "backup-velero-daily");
    // Truncated to 63 characters, a dash at the cut dropped.
    let long = "a".repeat(62);
    assert_eq!(fullname_of(&long), "a".repeat(62));
}

fn fullname_of(release: &str) -> String {
    recovery::fullname(release)
}

#[test]
fn values_are_kopia_fs_backup_to_the_clusters_prefix_with_a_daily_schedule() {
    let v = chart_values(&target("app1"), AccessMode::ReadWrite);
    assert_eq!(v["configuration"]["uploaderType"], "kopia");
    assert_eq!(v["configuration"]["defaultVolumesToFsBackup"], true);
    assert_eq!(v["deployNodeAgent"], true);
    assert_eq!(v["snapshotsEnabled"], false);
    assert_eq!(v["credentials"]["existingSecret"], CREDENTIALS_SECRET);
    let bsl = &v["configuration"]["backupStorageLocation"][0];
    assert_eq!(bsl["name"], "default");
    assert_eq!(bsl["provider"], "aws");
    assert_eq!(bsl["bucket"], "velero");
    assert_eq!(bsl["prefix"], "app1");
    assert_eq!(bsl["accessMode"], "ReadWrite");
    assert_eq!(bsl["config"]["s3Url"], "http://192.168.64.1:3900");
    assert_eq!(bsl["config"]["region"], "garage");
    assert_eq!(bsl["config"]["s3ForcePathStyle"], "true");
    assert_eq!(bsl["config"]["checksumAlgorithm"], "");
    let daily = &v["schedules"][DAILY];
    assert_eq!(daily["schedule"], DAILY_CRON);
    assert_eq!(daily["template"]["ttl"], "168h");
    assert_eq!(daily["template"]["includedNamespaces"][0], "*");
    assert_eq!(v["initContainers"][0]["image"], AWS_PLUGIN_IMAGE);
    assert_eq!(v["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(v["nodeAgent"]["resources"]["limits"]["memory"], "1024Mi");
    let read_only = chart_values(&target("app1"), AccessMode::ReadOnly);
    assert_eq!(
        read_only["configuration"]["backupStorageLocation"][0]["accessMode"],
        "ReadOnly"
    );
}

#[test]
fn restores_name_their_source_and_update_existing_objects() {
    let from_schedule = restore_from_schedule(
        "r1",
        &daily_schedule_name(),
        &["shop"],
        ExistingResourcePolicy::Update,
    );
    assert_eq!(from_schedule["spec"]["scheduleName"], "velero-daily");
    assert_eq!(from_schedule["spec"]["existingResourcePolicy"], "update");
    assert!(from_schedule["spec"].get("backupName").is_none());
    let from_backup = restore_from_backup("r2", "b1", &["*"], ExistingResourcePolicy::None);
    assert_eq!(from_backup["spec"]["backupName"], "b1");
    assert_eq!(from_backup["spec"]["existingResourcePolicy"], "none");
    let on_demand = backup("b1", BackupOf::Schedule(DAILY));
    assert_eq!(
        on_demand["metadata"]["labels"]["velero.io/schedule-name"],
        "velero-daily"
    );
    let bsl = backup_storage_location(&target("mgmt"), AccessMode::ReadOnly);
    assert_eq!(bsl["spec"]["accessMode"], "ReadOnly");
    assert_eq!(bsl["spec"]["objectStorage"]["prefix"], "mgmt");
    assert_eq!(bsl["spec"]["credential"]["name"], CREDENTIALS_SECRET);
}

#[test]
fn a_restore_of_resources_names_the_types_and_leaves_existing_objects() {
    let r = restore_resources_from_backup(
        "hostctl-web-1-1",
        "velero-daily-20261203020000",
        &["shop"],
        &["deployments.apps"],
        false,
        ExistingResourcePolicy::None,
    );
    assert_eq!(r["kind"], "Restore");
    assert_eq!(r["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        r["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "hostctl"
    );
    assert_eq!(r["spec"]["backupName"], "velero-daily-20261203020000");
    assert_eq!(r["spec"]["includedResources"][0], "deployments.apps");
    assert_eq!(r["spec"]["existingResourcePolicy"], "none");
    assert!(r["spec"].get("includeClusterResources").is_none());
    let cluster_scoped = restore_resources_from_backup(
        "r",
        "b",
        &["*"],
        &["clusterroles.rbac.authorization.k8s.io"],
        true,
        ExistingResourcePolicy::None,
    );
    assert_eq!(cluster_scoped["spec"]["includeClusterResources"], true);
}
