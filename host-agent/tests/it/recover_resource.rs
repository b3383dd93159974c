//! `hostctl recover resource` through the real binary against STAND-INs:
//! a topology on a loopback network of its own per test (mgmt's control
//! plane at .10, app1's at .20), test-support's stand-in API server at
//! each cluster's endpoint, and the test playing the controllers — a
//! thread that acts as Velero (it sets a Restore's status and puts the
//! backed-up object back) and as Argo CD (it runs the sync operation an
//! Application was given and puts the object back).
//!
//! (a) a resource only Velero backed up comes back from the daily
//! schedule's newest Completed backup, the command printing its steps and
//! the RTO verdict; (b) one an Application tracks is synced through it and
//! no Restore is created; (c) an API server that is another cluster's is
//! refused before anything is created; (d) a Restore that fails, then the
//! API server going away while the next one runs, then a rerun that
//! completes with the same backup and no third Restore. The objects the
//! command writes pass `validate-manifests`. The lab is in
//! `recover_resource_support`.

use crate::addons_upstream_schema::{run, tools_usable};
use crate::recover_resource_support::{
    APPS, BACKUPS, Lab, PLATFORM_CM, RESTORES, Velero, WEB, application, backup, eventually,
    has_all, ip, kubeadm_config, text, web_deployment,
};
use host_agent::recover::resource::{self, Target};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use test_support::kube_api;

#[test]
fn a_resource_velero_backed_up_comes_back_from_the_newest_daily_backup() {
    let lab = Lab::new(78, "app1");
    {
        let mut s = lab.app1.lock().unwrap();
        for (name, schedule, done) in [
            (
                "velero-daily-20261202020000",
                "velero-daily",
                "2026-12-02T02:01:10Z",
            ),
            (
                "velero-daily-20261203020000",
                "velero-daily",
                "2026-12-03T02:01:10Z",
            ),
            ("before-upgrade", "", "2026-12-04T09:00:00Z"),
        ] {
            let (path, b) = backup(name, schedule, done);
            s.objects.insert(path, b);
        }
    }
    // Argo CD tracks something else on app1.
    let (path, app) = application(78, &[("", "ConfigMap", "kube-public", "hostctl-platform")]);
    lab.mgmt.lock().unwrap().objects.insert(path, app);
    lab.backed_up.lock().unwrap().push((
        "velero-daily-20261203020000".into(),
        WEB.into(),
        web_deployment(),
    ));

    let out = lab.recover(&["deployment/web", "-n", "shop", "--within", "120"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    has_all(
        &t,
        &[
            "[1/4] check the API server is the cluster's … done in",
            "no Argo CD Application on mgmt tracks it",
            "Velero's newest Completed backup of velero-daily: velero-daily-20261203020000",
            "[2/4] choose the source … done in",
            "created Restore velero/hostctl-web-",
            "[3/4] restore the resource … done in",
            "[4/4] check it exists again … done in",
            "recovered in ",
            "(RTO 5m: met)",
        ],
    );
    eprintln!("{t}");
    let restores = lab.objects(&lab.app1, RESTORES);
    assert_eq!(restores.len(), 1, "{restores:#?}");
    let spec = &restores[0]["spec"];
    assert_eq!(spec["backupName"], "velero-daily-20261203020000");
    assert_eq!(spec["includedNamespaces"], json!(["shop"]));
    assert_eq!(spec["includedResources"], json!(["deployments.apps"]));
    assert_eq!(spec["existingResourcePolicy"], "none");
    assert!(lab.app1.lock().unwrap().objects.contains_key(WEB));
    assert!(Lab::writes(&lab.mgmt).is_empty(), "mgmt was changed");
    assert!(!lab.record("resource_shop_deployments.apps_web").exists());

    // It is there now: nothing to recover, nothing created.
    let out = lab.recover(&["deployment/web", "-n", "shop"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    has_all(&t, &["exists on app1: nothing to recover"]);
    assert_eq!(lab.objects(&lab.app1, RESTORES).len(), 1);
    assert!(!lab.record("resource_shop_deployments.apps_web").exists());
}

#[test]
fn a_resource_an_application_tracks_is_synced_through_it_without_a_restore() {
    let lab = Lab::new(79, "app1");
    let (path, app) = application(79, &[("", "ConfigMap", "kube-public", "hostctl-platform")]);
    lab.mgmt.lock().unwrap().objects.insert(path, app);
    let (b, backup) = backup(
        "velero-daily-20261203020000",
        "velero-daily",
        "2026-12-03T02:01:10Z",
    );
    lab.app1.lock().unwrap().objects.insert(b, backup);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "hostctl-platform", "namespace": "kube-public",
                                 "uid": "7a0c"},
                    "data": {"role": "app"}});
    lab.backed_up
        .lock()
        .unwrap()
        .push(("argocd:platform-app1".into(), PLATFORM_CM.into(), cm));

    let out = lab.recover(&[
        "configmap/hostctl-platform",
        "-n",
        "kube-public",
        "--within",
        "120",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    has_all(
        &t,
        &[
            "Argo CD's Application argocd/platform-app1 on mgmt tracks it",
            "requested a sync of just this resource on platform-app1",
            "[3/4] restore the resource … done in",
            "[4/4] check it exists again … done in",
            "(uid 7a0c)",
            "(RTO 5m: ",
        ],
    );
    let patches: Vec<_> = lab
        .mgmt
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .cloned()
        .collect();
    assert_eq!(patches.len(), 1, "{patches:#?}");
    assert_eq!(patches[0].path, format!("{APPS}/platform-app1"));
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    let body: Value = serde_json::from_str(&patches[0].body).unwrap();
    assert_eq!(
        body["operation"]["sync"]["resources"],
        json!([{"group": "", "kind": "ConfigMap", "name": "hostctl-platform",
                "namespace": "kube-public"}])
    );
    assert_eq!(body["operation"]["initiatedBy"]["username"], "hostctl");
    assert!(
        lab.objects(&lab.app1, RESTORES).is_empty(),
        "a Restore was created"
    );
    assert!(Lab::writes(&lab.app1).is_empty(), "app1 was written to");
}

#[test]
fn an_api_server_of_another_cluster_is_refused_before_anything_is_created() {
    // app1's address answers as mgmt.
    let lab = Lab::new(80, "mgmt");
    let (b, backup) = backup(
        "velero-daily-20261203020000",
        "velero-daily",
        "2026-12-03T02:01:10Z",
    );
    lab.app1.lock().unwrap().objects.insert(b, backup);
    let out = lab.recover(&["deployment/web", "-n", "shop"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    has_all(
        &t,
        &[
            "[1/4] check the API server is the cluster's … failed",
            &format!("https://{}:6443", ip(80, 20)),
            "is cluster \"mgmt\"",
            "not \"app1\"",
            "nothing was changed",
        ],
    );
    assert!(!t.contains("[2/4]"), "{t}");
    assert!(Lab::writes(&lab.app1).is_empty());
    assert!(
        lab.mgmt.lock().unwrap().requests.is_empty(),
        "mgmt was asked"
    );
    assert!(
        !lab.record("resource_shop_deployments.apps_web").exists(),
        "a refused run left a record"
    );

    // The address fixed, but the cluster has no backup and nothing on
    // mgmt tracks the object: a refusal that says how to take one.
    {
        let mut s = lab.app1.lock().unwrap();
        s.objects.insert(
            "/api/v1/namespaces/kube-system/configmaps/kubeadm-config".into(),
            kubeadm_config("app1"),
        );
        s.objects.retain(|p, _| !p.starts_with(BACKUPS));
    }
    let out = lab.recover(&["deployment/web", "-n", "shop"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    has_all(
        &t,
        &[
            "[1/4] check the API server is the cluster's … done in",
            "[2/4] choose the source … failed",
            "no source for deployments.apps shop/web on app1",
            "velero backup create --from-schedule velero-daily -n velero",
        ],
    );
    assert!(Lab::writes(&lab.app1).is_empty());
    assert!(!lab.record("resource_shop_deployments.apps_web").exists());
}

#[test]
fn a_failed_restore_and_a_lost_api_server_are_finished_by_reruns_with_the_same_backup() {
    let mut lab = Lab::new(81, "app1");
    let (b, backup2) = backup(
        "velero-daily-20261203020000",
        "velero-daily",
        "2026-12-03T02:01:10Z",
    );
    lab.app1.lock().unwrap().objects.insert(b, backup2);
    lab.backed_up.lock().unwrap().push((
        "velero-daily-20261203020000".into(),
        WEB.into(),
        web_deployment(),
    ));
    let record = lab.record("resource_shop_deployments.apps_web");

    // mgmt is down (GitOps paused) and Velero fails the Restore.
    lab.stop_serving(0);
    *lab.velero.lock().unwrap() = Velero::Fail;
    let out = lab.recover(&["deployments.apps/web", "-n", "shop", "--within", "120"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    has_all(
        &t,
        &[
            "mgmt's Argo CD did not answer",
            "looking at Velero's backups",
            "Velero's newest Completed backup of velero-daily: velero-daily-20261203020000",
            "[3/4] restore the resource … failed",
            "ended PartiallyFailed (errors: 1, warnings: 2",
            "velero restore describe hostctl-web-",
            "the same command again",
        ],
    );
    let kept: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(kept["source"], "velero:velero-daily-20261203020000");

    // A newer backup arrives; the rerun's Restore is accepted and then
    // app1's API server goes away while it waits.
    let (b, backup3) = backup(
        "velero-daily-20261204020000",
        "velero-daily",
        "2026-12-04T02:01:10Z",
    );
    lab.app1.lock().unwrap().objects.insert(b, backup3);
    *lab.velero.lock().unwrap() = Velero::Hold;
    let child = lab
        .command(&[
            "recover",
            "resource",
            "app1",
            "deployment/web",
            "-n",
            "shop",
            "--yes",
            "--within",
            "6",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("a second Restore", || {
        lab.objects(&lab.app1, RESTORES).len() == 2
    });
    lab.stop_serving(1);
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    has_all(
        &t,
        &[
            "resuming the recovery of deployments.apps shop/web on app1",
            "[2/4] choose the source … done in an earlier run",
            "of an earlier run failed; creating a new one",
            "[3/4] restore the resource … failed",
            "did not finish within 6s",
        ],
    );

    // The API server is back and Velero finishes: the rerun waits on the
    // same Restore, creates none, and completes with the recorded backup.
    lab.serve(1);
    *lab.velero.lock().unwrap() = Velero::Complete;
    let out = lab.recover(&["deployment/web", "-n", "shop", "--within", "120"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    has_all(
        &t,
        &[
            "waiting on Restore velero/hostctl-web-",
            "created by an earlier run",
            "[4/4] check it exists again … done in",
            "recovered in ",
        ],
    );
    let restores = lab.objects(&lab.app1, RESTORES);
    assert_eq!(restores.len(), 2, "{restores:#?}");
    for r in &restores {
        assert_eq!(r["spec"]["backupName"], "velero-daily-20261203020000");
    }
    let names: Vec<&str> = restores
        .iter()
        .filter_map(|r| r["metadata"]["name"].as_str())
        .collect();
    assert!(
        names[0].ends_with("-1") && names[1].ends_with("-2"),
        "{names:?}"
    );
    assert!(!record.exists(), "a finished recovery left its record");
}

fn write(dir: &Path, name: &str, objects: &[Value]) -> PathBuf {
    let path = dir.join(name);
    let docs: Vec<String> = objects.iter().map(Value::to_string).collect();
    std::fs::write(&path, docs.join("\n---\n")).unwrap();
    path
}

/// The Restores (namespaced and cluster-scoped) and an Application with
/// the sync operation merged in pass the Kubernetes 1.35 and the pinned
/// Velero and Argo CD CRD schemas.
#[test]
fn the_objects_the_recovery_writes_pass_the_schemas() {
    if !tools_usable("recover resource schemas") {
        return;
    }
    let web = Target::parse("deployment/web", Some("shop")).unwrap();
    let role = Target::parse("clusterrole/viewer", None).unwrap();
    let restores = [
        resource::restore(&resource::restore_name(&web, 1_796_320_800, 1), "b1", &web),
        resource::restore(
            &resource::restore_name(&role, 1_796_320_800, 2),
            "b1",
            &role,
        ),
    ];
    let (_, mut app) = application(78, &[("apps", "Deployment", "shop", "web")]);
    app.as_object_mut().unwrap().remove("status");
    kube_api::merge(
        &mut app,
        &resource::sync_operation(&web, &resource::sync_id(&web, 1_796_320_800)),
    );
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write(dir.path(), "restores.yaml", &restores),
        write(dir.path(), "application.yaml", &[app]),
    ];
    let (ok, text) = run("validate-manifests", &files);
    assert!(ok, "{text}");
    assert!(text.contains("0 invalid"), "{text}");
    // The check reads the CRDs: a field Velero does not know is refused.
    let mut typo = restores[0].clone();
    typo["spec"]["includedResource"] = typo["spec"]["includedResources"].take();
    let bad = write(dir.path(), "typo.yaml", &[typo]);
    let (ok, text) = run("validate-manifests", &[bad]);
    assert!(!ok, "an unknown Restore field passed:\n{text}");
}
