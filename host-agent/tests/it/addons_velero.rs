//! Velero (issue #20; docs/platform.md, "Velero"): with a backup target
//! every cluster's plan has the credentials Secret and the chart, without
//! one neither, and the install plan applies the Secret before the chart;
//! the values use only keys of velero 12.1.0; the Secret, the
//! location in both modes, the Schedule the chart makes from hostctl's
//! values, Backups and Restores, and the StorageClasses pass the
//! Kubernetes 1.35 and Velero CRD schemas; the key shows in no Debug output
//! and the install-time Secret carries it as an AWS ini.

use crate::addons_upstream_schema::{run, shared, tools_usable};
use crate::cluster_config_support::default_resolved;
use host_agent::addons::render::{
    Credentials, PlatformSource, RenderContext, Rendered, render, render_cluster,
};
use host_agent::addons::velero::{
    self, AccessMode, BackupOf, BackupTarget, ExistingResourcePolicy, recovery,
};
use host_agent::cluster_api::apply::parse_documents;
use serde_json::Value;
use std::path::{Path, PathBuf};
use topology::Resolved;

const SECRET_KEY: &str = "4f0c1d-garage-secret-never-printed";

fn target(cluster: &str) -> BackupTarget {
    BackupTarget {
        s3_url: "http://192.168.64.1:3900".into(),
        region: "garage".into(),
        bucket: "velero".into(),
        prefix: cluster.into(),
        access_key_id: format!("GK{cluster}0123456789abcdef"),
        secret_access_key: vault::Secret::new(SECRET_KEY),
        repository_password: vault::Secret::new("kopia-password-of-the-test"),
        access: host_agent::addons::velero::AccessMode::ReadWrite,
    }
}

fn clusters(resolved: &Resolved) -> Vec<String> {
    resolved
        .topology()
        .clusters()
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

/// Every add-on of `cluster` rendered for review, with or without a target.
fn rendered(resolved: &Resolved, cluster: &str, backup: Option<&BackupTarget>) -> Vec<Rendered> {
    let platform = PlatformSource::served_by_host(resolved, None);
    render_cluster(&RenderContext {
        resolved,
        cluster,
        credentials: Credentials::Placeholder,
        platform: &platform,
        backup,
    })
    .expect("renders")
}

fn objects(r: &Rendered) -> Vec<Value> {
    r.manifests
        .iter()
        .flat_map(|m| parse_documents(&m.file, &m.yaml).expect("parses"))
        .map(|d| serde_json::to_value(&d.object).expect("json"))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn yaml_of(objects: &[Value]) -> String {
    let docs: Vec<String> = objects.iter().map(Value::to_string).collect();
    docs.join("\n---\n")
}

#[test]
fn every_cluster_gets_velero_with_a_target_and_none_without() {
    let resolved = default_resolved();
    let names = clusters(&resolved);
    assert_eq!(names.len(), 3, "{names:?}");
    for cluster in &names {
        let target = target(cluster);
        let with: Vec<&str> = rendered(&resolved, cluster, Some(&target))
            .iter()
            .map(|r| r.addon.name)
            .collect();
        let without: Vec<&str> = rendered(&resolved, cluster, None)
            .iter()
            .map(|r| r.addon.name)
            .collect();
        assert!(
            with.contains(&"velero") && with.contains(&"velero-credentials"),
            "{cluster}: {with:?}"
        );
        assert!(
            !without.iter().any(|a| a.starts_with("velero")),
            "{cluster}: {without:?}"
        );
        assert_eq!(with.len(), without.len() + 2, "{cluster}");
    }
}

#[test]
fn the_install_plan_applies_the_secret_then_installs_the_chart_and_waits_for_both_workloads() {
    let resolved = default_resolved();
    let target = target("app1");
    let steps = host_agent::addons::plan::steps(&rendered(&resolved, "app1", Some(&target)));
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step {name}"))
    };
    let secret = step("velero-credentials");
    assert!(secret.helm.is_none());
    assert_eq!(
        secret.apply.as_ref().map(|a| a.files.clone()),
        Some(vec![
            "addons/velero-credentials/manifests/10-velero-s3.yaml".to_owned(),
            "addons/velero-credentials/manifests/11-velero-repo-credentials.yaml".to_owned(),
        ])
    );
    let chart = step("velero");
    assert_eq!(chart.after, ["velero-credentials"]);
    assert_eq!(chart.version.as_deref(), Some("12.1.0"));
    let helm = chart.helm.as_ref().expect("a chart");
    assert_eq!(helm.repo, "https://vmware-tanzu.github.io/helm-charts");
    assert_eq!(
        (helm.chart.as_str(), helm.namespace.as_str()),
        ("velero", "velero")
    );
    for want in [
        "Deployment velero/velero available",
        "DaemonSet velero/node-agent ready on every node",
    ] {
        assert!(chart.ready.iter().any(|r| r == want), "{:?}", chart.ready);
    }
}

#[test]
fn the_values_use_only_keys_of_velero_12_1_0() {
    if !tools_usable("velero values keys") {
        return;
    }
    let resolved = default_resolved();
    let dir = tempfile::tempdir().unwrap();
    let keys = shared().join(format!(
        "reference/charts/velero-{}-values-keys.json",
        velero::CHART.version
    ));
    let mut args = vec!["--strict".into(), keys];
    for cluster in clusters(&resolved) {
        let target = target(&cluster);
        let r = rendered(&resolved, &cluster, Some(&target));
        let chart = r.iter().find(|r| r.addon.name == "velero").expect("velero");
        let values = chart.values.as_deref().expect("values");
        args.push(write(dir.path(), &format!("{cluster}.yaml"), values));
    }
    // The read-only location a rebuilt cluster restores through, too.
    let read_only = velero::chart_values(&target("app1"), AccessMode::ReadOnly);
    args.push(write(
        dir.path(),
        "read-only.yaml",
        &serde_json::to_string(&read_only).unwrap(),
    ));
    let (ok, text) = run("check-values-keys", &args);
    assert!(ok, "{text}");
}

/// The install-time Secret, rendered with a minted context.
fn installed_secret(resolved: &Resolved, pki: &certs::Pki, target: &BackupTarget) -> Value {
    let platform = PlatformSource::served_by_host(resolved, None);
    let ctx = RenderContext {
        resolved,
        cluster: "app1",
        credentials: Credentials::Mint(pki),
        platform: &platform,
        backup: Some(target),
    };
    let r = render(&velero::CREDENTIALS, &ctx).expect("renders");
    objects(&r).remove(0)
}

fn pki(resolved: &Resolved, home: &Path) -> certs::Pki {
    let spec = certs::PkiSpec {
        clusters: clusters(resolved),
        host_sans: vec!["192.168.64.1".into()],
    };
    certs::Pki::open_or_init(home, &spec).expect("pki")
}

#[test]
fn the_secret_carries_the_key_as_an_aws_ini_at_install_and_a_placeholder_for_review() {
    let resolved = default_resolved();
    let target = target("app1");
    let home = tempfile::tempdir().unwrap();
    let pki = pki(&resolved, home.path());
    let secret = installed_secret(&resolved, &pki, &target);
    assert_eq!(secret["metadata"]["name"], velero::CREDENTIALS_SECRET);
    assert_eq!(secret["metadata"]["namespace"], velero::NAMESPACE);
    assert_eq!(
        secret["stringData"][velero::CREDENTIALS_KEY],
        format!(
            "[default]\naws_access_key_id=GKapp10123456789abcdef\naws_secret_access_key={SECRET_KEY}\n"
        )
    );
    let review = rendered(&resolved, "app1", Some(&target));
    let credentials = review
        .iter()
        .find(|r| r.addon.name == "velero-credentials")
        .expect("credentials");
    let files: String = credentials.files().into_iter().map(|(_, t)| t).collect();
    assert!(!files.contains(SECRET_KEY), "{files}");
    assert!(files.contains("aws_access_key_id=GKapp1"), "{files}");
    // The Kopia password: hostctl's own (never Velero's published
    // default), a placeholder in review renderings.
    assert!(files.contains(velero::REPOSITORY_SECRET), "{files}");
    assert!(!files.contains("kopia-password-of-the-test"), "{files}");
    assert!(!files.contains("static-passw0rd"), "{files}");
}

#[test]
fn the_key_is_in_no_debug_output() {
    let resolved = default_resolved();
    let target = target("mgmt");
    let platform = PlatformSource::served_by_host(&resolved, None);
    let ctx = RenderContext {
        resolved: &resolved,
        cluster: "mgmt",
        credentials: Credentials::Placeholder,
        platform: &platform,
        backup: Some(&target),
    };
    for shown in [format!("{target:?}"), format!("{ctx:?}")] {
        assert!(!shown.contains(SECRET_KEY), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}

/// The recovery objects, a Backup of each kind and a Restore of each source.
fn recovery_objects(target: &BackupTarget) -> Vec<Value> {
    vec![
        velero::backup_storage_location(target, AccessMode::ReadWrite),
        velero::backup_storage_location(target, AccessMode::ReadOnly),
        recovery::schedule(velero::DAILY, velero::DAILY_CRON),
        velero::backup("before-upgrade", BackupOf::Schedule(velero::DAILY)),
        velero::backup("shop-now", BackupOf::Namespaces(&["shop", "shop-db"])),
        velero::restore_from_schedule(
            "lost-cluster",
            &velero::daily_schedule_name(),
            &["*"],
            ExistingResourcePolicy::Update,
        ),
        velero::restore_from_backup(
            "deleted-configmap",
            "shop-now",
            &["shop"],
            ExistingResourcePolicy::Update,
        ),
    ]
}

#[test]
fn every_velero_object_and_the_storage_classes_pass_the_kubernetes_and_crd_schemas() {
    if !tools_usable("velero object schemas") {
        return;
    }
    let resolved = default_resolved();
    let target = target("app2");
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let pki = pki(&resolved, home.path());
    let mut files = vec![
        write(
            dir.path(),
            "recovery.yaml",
            &yaml_of(&recovery_objects(&target)),
        ),
        write(
            dir.path(),
            "installed-secret.yaml",
            &yaml_of(&[installed_secret(&resolved, &pki, &target)]),
        ),
    ];
    // The review rendering of both entries as `hostctl render` writes them.
    for r in rendered(&resolved, "app2", Some(&target)) {
        if r.addon.name.starts_with("velero") {
            for (rel, text) in r.files() {
                if rel.contains("/manifests/") {
                    files.push(write(dir.path(), &rel.replace('/', "_"), &text));
                }
            }
        }
    }
    // The Schedule's template is what the values give the chart.
    let values = velero::chart_values(&target, AccessMode::ReadWrite);
    assert_eq!(
        values["schedules"][velero::DAILY]["template"],
        recovery::schedule(velero::DAILY, velero::DAILY_CRON)["spec"]["template"]
    );
    let classes = host_agent::cluster_config::manifests::for_cluster(&resolved, "app2")
        .expect("base manifests");
    let (name, text) = classes
        .iter()
        .find(|(f, _)| f == host_agent::cluster_config::manifests::STORAGE_CLASSES_FILE)
        .expect("storage classes");
    assert!(text.contains("defaultVolumeType: local"), "{text}");
    files.push(write(dir.path(), name, text));
    assert_eq!(files.len(), 5, "{files:?}");
    let (ok, text) = run("validate-manifests", &files);
    assert!(ok, "{text}");
    assert!(text.contains("0 invalid"), "{text}");
}

/// The check reads Velero's CRDs: a location in a mode Velero does not
/// know is refused.
#[test]
fn the_schema_check_refuses_a_location_with_an_unknown_access_mode() {
    if !tools_usable("velero schema refusal") {
        return;
    }
    let mut bsl = velero::backup_storage_location(&target("app1"), AccessMode::ReadOnly);
    bsl["spec"]["accessMode"] = "WriteOnly".into();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bad.yaml", &yaml_of(&[bsl]));
    let (ok, text) = run("validate-manifests", &[file]);
    assert!(!ok, "an unknown access mode passed:\n{text}");
}

#[test]
fn every_recovery_kind_is_one_hostctl_can_apply() {
    for object in recovery_objects(&target("mgmt")) {
        let (api_version, kind) = (
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        );
        let known = host_agent::cluster_api::resources::lookup(api_version, kind);
        assert!(
            known.is_some_and(|k| k.namespaced),
            "{api_version} {kind} not in cluster_api::resources"
        );
    }
}
