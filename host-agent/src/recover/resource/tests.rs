use super::*;
use crate::addons::velero::daily_schedule_name;
use crate::recover::velero::{Restore, newest_backup, restore_state, usable};

fn target(spec: &str, ns: Option<&str>) -> Target {
    Target::parse(spec, ns).expect("parses")
}

#[test]
fn kinds_are_read_as_kubectl_reads_them() {
    for spec in [
        "deployment/web",
        "Deployment/web",
        "deployments/web",
        "deployments.apps/web",
    ] {
        let t = target(spec, Some("shop"));
        assert_eq!(t.kind.kind, "Deployment", "{spec}");
        assert_eq!(t.path(), "/apis/apps/v1/namespaces/shop/deployments/web");
        assert_eq!(t.velero_resource(), "deployments.apps");
        assert_eq!(t.to_string(), "deployments.apps shop/web");
    }
    let cm = target("configmap/x", None);
    assert_eq!(cm.namespace.as_deref(), Some("default"));
    assert_eq!(cm.path(), "/api/v1/namespaces/default/configmaps/x");
    assert_eq!(cm.velero_resource(), "configmaps");
    let role = target("clusterrole/view-x", None);
    assert_eq!(role.namespace, None);
    assert_eq!(
        role.path(),
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/view-x"
    );
    for bad in ["web", "deployment/", "/web", "a/b/c", "frobnicator/x"] {
        assert!(Target::parse(bad, None).is_err(), "{bad} parsed");
    }
    let err = Target::parse("clusterrole/x", Some("shop")).unwrap_err();
    assert!(err.to_string().contains("cluster-scoped"), "{err}");
}

#[test]
fn each_object_has_its_own_record_and_restore_names_fit_a_label() {
    let a = target("configmap/x", Some("a"));
    let b = target("configmap/x", Some("b"));
    assert_ne!(a.scenario(), b.scenario());
    assert_eq!(a.scenario(), "resource_a_configmaps_x");
    let long = target(&format!("configmap/{}", "n".repeat(253)), None);
    let name = restore_name(&long, 1_796_320_800, 12);
    assert!(name.len() <= 63, "{name}");
    assert_eq!(restore_name(&a, 1_796_320_800, 1), "hostctl-x-1796320800-1");
    assert_ne!(restore_name(&a, 1, 1), restore_name(&a, 1, 2));
}

#[test]
fn sources_round_trip_through_the_record() {
    for s in [
        Source::Application("platform-app1".into()),
        Source::Backup("b1".into()),
    ] {
        assert_eq!(Source::parse(&s.to_string()), Some(s));
    }
    assert_eq!(Source::parse("20261203T180000Z-rev42.db"), None);
}

fn app(name: &str, server: &str, resources: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": {"destination": {"server": server}},
           "status": {"resources": resources}})
}

#[test]
fn the_owner_is_the_application_tracking_it_on_this_clusters_destination() {
    let t = target("configmap/hostctl-platform", Some("kube-public"));
    let entry = json!([{"version": "v1", "kind": "ConfigMap", "namespace": "kube-public",
                        "name": "hostctl-platform", "status": "OutOfSync",
                        "health": {"status": "Missing"}}]);
    let dest = Destination {
        name: "app1".into(),
        server: "https://192.168.64.20:6443".into(),
    };
    let apps = vec![
        app("platform-app2", "https://192.168.64.30:6443", entry.clone()),
        app(
            "platform-app1",
            "https://192.168.64.20:6443/",
            entry.clone(),
        ),
    ];
    assert_eq!(
        owning_application(&apps, &t, &dest).as_deref(),
        Some("platform-app1")
    );
    // Another namespace, kind or group is not it.
    let other = target("configmap/hostctl-platform", Some("default"));
    assert_eq!(owning_application(&apps, &other, &dest), None);
    let secret = target("secret/hostctl-platform", Some("kube-public"));
    assert_eq!(owning_application(&apps, &secret, &dest), None);
    // By the destination's name too.
    let named = json!({"metadata": {"name": "x"}, "spec": {"destination": {"name": "app1"}},
                       "status": {"resources": entry}});
    assert_eq!(
        owning_application(&[named], &t, &dest).as_deref(),
        Some("x")
    );
}

#[test]
fn the_sync_is_recognised_as_this_recoverys() {
    let t = target("deployment/web", Some("shop"));
    let op = sync_operation(&t, "id-1");
    assert_eq!(
        op["operation"]["sync"]["resources"][0],
        json!({"group": "apps", "kind": "Deployment", "name": "web", "namespace": "shop"})
    );
    let mut app = json!({"status": {}});
    assert_eq!(sync_state(&app, "id-1"), Sync::Request);
    app["operation"] = op["operation"].clone();
    assert_eq!(sync_state(&app, "id-1"), Sync::Running("requested".into()));
    assert!(matches!(sync_state(&app, "id-2"), Sync::Busy(_)));
    app["operation"] = Value::Null;
    app["status"]["operationState"] = json!({"operation": op["operation"], "phase": "Running"});
    assert_eq!(sync_state(&app, "id-1"), Sync::Running("Running".into()));
    assert!(matches!(sync_state(&app, "other"), Sync::Busy(_)));
    app["status"]["operationState"]["phase"] = json!("Succeeded");
    assert_eq!(sync_state(&app, "id-1"), Sync::Succeeded);
    assert_eq!(sync_state(&app, "other"), Sync::Request);
    app["status"]["operationState"]["phase"] = json!("Failed");
    app["status"]["operationState"]["message"] = json!("one or more objects failed to apply");
    assert_eq!(
        sync_state(&app, "id-1"),
        Sync::Failed {
            phase: "Failed".into(),
            message: "one or more objects failed to apply".into()
        }
    );
}

fn backup(name: &str, schedule: &str, phase: &str, done: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"velero.io/schedule-name": schedule}},
           "spec": {"storageLocation": "default"},
           "status": {"phase": phase, "completionTimestamp": done}})
}

#[test]
fn the_newest_completed_backup_of_the_daily_schedule_is_chosen() {
    let daily = daily_schedule_name();
    let backups = vec![
        backup(
            "velero-daily-20261202020000",
            &daily,
            "Completed",
            "2026-12-02T02:01:00Z",
        ),
        backup(
            "velero-daily-20261204020000",
            &daily,
            "PartiallyFailed",
            "2026-12-04T02:01:00Z",
        ),
        backup(
            "velero-daily-20261203020000",
            &daily,
            "Completed",
            "2026-12-03T02:01:00Z",
        ),
        backup(
            "other-20261205",
            "other",
            "Completed",
            "2026-12-05T02:01:00Z",
        ),
    ];
    assert_eq!(
        newest_backup(&backups).as_deref(),
        Some("velero-daily-20261203020000")
    );
    assert_eq!(newest_backup(&backups[1..2]), None);
    let mut elsewhere = backups[0].clone();
    elsewhere["spec"]["storageLocation"] = json!("old-store");
    assert!(usable(&elsewhere).unwrap_err().contains("old-store"));
    assert!(usable(&backups[1]).unwrap_err().contains("PartiallyFailed"));
}

#[test]
fn the_restore_brings_back_only_what_is_missing_of_that_type() {
    let t = target("deployment/web", Some("shop"));
    let r = restore("hostctl-web-1-1", "b1", &t);
    assert_eq!(r["spec"]["backupName"], "b1");
    assert_eq!(r["spec"]["includedNamespaces"], json!(["shop"]));
    assert_eq!(r["spec"]["includedResources"], json!(["deployments.apps"]));
    assert_eq!(r["spec"]["existingResourcePolicy"], "none");
    assert!(r["spec"].get("includeClusterResources").is_none());
    let c = restore("n", "b1", &target("clusterrole/x", None));
    assert_eq!(c["spec"]["includedNamespaces"], json!(["*"]));
    assert_eq!(c["spec"]["includeClusterResources"], true);
}

#[test]
fn a_failed_restore_says_its_counts_and_the_next_command() {
    let mut r = json!({"metadata": {"name": "hostctl-web-1-1"}, "status": {"phase": "InProgress"}});
    assert_eq!(restore_state(&r), Restore::Running("InProgress".into()));
    r["status"] = json!({"phase": "PartiallyFailed", "errors": 2, "warnings": 1});
    let Restore::Failed(why) = restore_state(&r) else {
        panic!("not failed")
    };
    for part in [
        "PartiallyFailed",
        "errors: 2, warnings: 1",
        "velero restore describe hostctl-web-1-1",
    ] {
        assert!(why.contains(part), "{part:?} not in {why}");
    }
    r["status"] = json!({"phase": "Completed", "warnings": 3});
    assert_eq!(restore_state(&r), Restore::Completed { warnings: 3 });
}
