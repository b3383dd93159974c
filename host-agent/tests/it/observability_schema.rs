//! The observability stack's settings checked deeper than chart keys:
//! kube-prometheus-stack copies `prometheusSpec`, `alertmanagerSpec` and
//! `thanosRulerSpec` into the Prometheus, PrometheusAgent, Alertmanager
//! and ThanosRuler objects it renders, so the values hostctl renders are
//! turned into those objects the way the chart's templates do (chart-only
//! switches dropped, `storageSpec` → `storage`, the ruler's
//! Alertmanager secret → a key reference) and validated against the
//! operator's CRD schemas. Every PromQL expression of the dashboards goes
//! through a real `promtool check rules`.

use crate::addons_upstream_schema::{run, tools_usable};
use host_agent::addons::observability::{dashboards, prometheus};
use host_agent::addons::render::{Credentials, PlatformSource, RenderContext};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn values(addon: &host_agent::addons::Addon, cluster: &str) -> Value {
    let resolved = topology::default_topology()
        .resolve(None)
        .expect("resolves");
    let platform = PlatformSource::served_by_host(&resolved, None);
    let ctx = RenderContext {
        resolved: &resolved,
        cluster,
        credentials: Credentials::Placeholder,
        platform: &platform,
        backup: None,
    };
    (addon.values)(&ctx).expect("renders")
}

/// A chart `*Spec` as the object's `spec`, as the chart's templates map it.
fn spec_of(chart_spec: &Value) -> Value {
    let mut spec = chart_spec.as_object().cloned().unwrap_or_default();
    spec.retain(|k, _| !k.ends_with("NilUsesHelmValues"));
    if let Some(storage) = spec.remove("storageSpec") {
        spec.insert("storage".into(), storage);
    }
    if spec.remove("alertmanagersConfig").is_some() {
        spec.insert(
            "alertmanagersConfig".into(),
            json!({"name": "kube-prometheus-stack-thanos-ruler", "key": "alertmanager-configs.yaml"}),
        );
    }
    Value::Object(spec)
}

fn object(api_version: &str, kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": prometheus::PROMETHEUS, "namespace": "monitoring"},
        "spec": spec,
    })
}

fn write(dir: &Path, name: &str, objects: &[Value]) -> PathBuf {
    let path = dir.join(name);
    let text: Vec<String> = objects.iter().map(Value::to_string).collect();
    std::fs::write(&path, text.join("\n---\n")).expect("write");
    path
}

#[test]
fn the_rendered_prometheus_agent_ruler_and_alertmanager_specs_pass_the_operator_crds() {
    if !tools_usable("observability CR schemas") {
        return;
    }
    let mgmt = values(&prometheus::STACK, "mgmt");
    let app = values(&prometheus::AGENT, "app1");
    let objects = [
        object(
            "monitoring.coreos.com/v1",
            "Prometheus",
            spec_of(&mgmt["prometheus"]["prometheusSpec"]),
        ),
        object(
            "monitoring.coreos.com/v1",
            "ThanosRuler",
            spec_of(&mgmt["thanosRuler"]["thanosRulerSpec"]),
        ),
        object(
            "monitoring.coreos.com/v1",
            "Alertmanager",
            spec_of(&mgmt["alertmanager"]["alertmanagerSpec"]),
        ),
        object(
            "monitoring.coreos.com/v1alpha1",
            "PrometheusAgent",
            spec_of(&app["prometheus"]["prometheusSpec"]),
        ),
    ];
    // The agent really is what C2 is about: remote write with the buffer's
    // settings, its WAL on a volume.
    let agent = &objects[3]["spec"];
    assert_eq!(agent["remoteWrite"][0]["headers"]["THANOS-TENANT"], "app1");
    assert!(
        agent["storage"]["volumeClaimTemplate"].is_object(),
        "{agent}"
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = write(dir.path(), "crs.yaml", &objects);
    let (ok, text) = run("validate-manifests", std::slice::from_ref(&file));
    assert!(ok && text.contains("0 invalid"), "{text}");
    // …and the check can fail: a misspelt field of the agent is refused.
    let mut bad = objects[3].clone();
    bad["spec"]["remoteWrite"][0]["queueConfg"] = json!({});
    let file = write(dir.path(), "bad.yaml", &[bad]);
    let (ok, text) = run("validate-manifests", &[file]);
    assert!(!ok, "a misspelt field passed:\n{text}");
}

/// `promtool`, from Debian's prometheus package (`.ci/run` installs it).
pub(crate) fn promtool(test: &str) -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/promtool");
    if path.is_file() {
        return Some(path);
    }
    test_support::skip(
        test,
        "promtool is not installed (apt-get install prometheus)",
    );
    None
}

#[test]
fn every_dashboard_query_is_valid_promql_for_a_real_promtool() {
    let Some(promtool) = promtool("dashboard PromQL") else {
        return;
    };
    let rules: Vec<Value> = dashboards::expressions()
        .iter()
        .enumerate()
        .map(|(i, expr)| json!({"record": format!("hostctl:dashboard_query_{i}"), "expr": expr}))
        .collect();
    assert!(rules.len() >= 10, "{rules:?}");
    let file = json!({"groups": [{"name": "dashboards", "rules": rules}]});
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("dashboards.rules.yaml");
    std::fs::write(&path, file.to_string()).expect("write");
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
