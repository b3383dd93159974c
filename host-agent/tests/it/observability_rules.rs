//! hostctl's alert rules through a real `promtool`: every group hostctl
//! renders passes `check rules`, one alert fires on synthetic failing
//! series and stays silent on healthy ones (`test rules`), and the
//! PrometheusRule object passes the operator's CRD schema.

use crate::addons_upstream_schema::{run, tools_usable};
use crate::observability_schema::promtool;
use host_agent::addons::observability::rules;
use serde_json::{Value, json};
use std::process::Command;

fn promtool_ok(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let tool = promtool("hostctl alert rules").expect("checked by the caller");
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn rule_file(dir: &std::path::Path) -> std::path::PathBuf {
    let objects = rules::rule_objects(topology::ClusterRole::Mgmt);
    assert_eq!(objects.len(), 1);
    let path = dir.join("hostctl.rules.yaml");
    std::fs::write(
        &path,
        json!({"groups": objects[0]["spec"]["groups"]}).to_string(),
    )
    .expect("write");
    path
}

#[test]
fn every_rendered_rule_group_passes_a_real_promtool_check() {
    if promtool("hostctl alert rules").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    rule_file(dir.path());
    let (ok, text) = promtool_ok(&["check", "rules", "hostctl.rules.yaml"], dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn remote_write_failing_fires_for_the_failing_cluster_only() {
    if promtool("hostctl alert rules").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    rule_file(dir.path());
    let tests = json!({
        "rule_files": ["hostctl.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": "prometheus_remote_storage_samples_failed_total{cluster=\"app1\",url=\"u\"}",
                 "values": "0+10x40"},
                {"series": "prometheus_remote_storage_samples_failed_total{cluster=\"app2\",url=\"u\"}",
                 "values": "0+0x40"},
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "HostctlRemoteWriteFailing", "exp_alerts": []},
                {"eval_time": "30m", "alertname": "HostctlRemoteWriteFailing", "exp_alerts": [{
                    "exp_labels": {"severity": "warning", "cluster": "app1"},
                    "exp_annotations": {
                        "summary": "app1's agent fails to remote-write samples",
                        "description": "prometheus_remote_storage_samples_failed_total is rising: Thanos Receive refuses or drops what the agent sends.",
                    },
                }]},
            ],
        }],
    });
    std::fs::write(dir.path().join("tests.yaml"), tests.to_string()).expect("write");
    let (ok, text) = promtool_ok(&["test", "rules", "tests.yaml"], dir.path());
    assert!(ok, "{text}");
    // …and the test can fail: expecting no alert at 30 m is refused.
    let mut wrong = tests.clone();
    wrong["tests"][0]["alert_rule_test"][1]["exp_alerts"] = json!([]);
    std::fs::write(dir.path().join("wrong.yaml"), wrong.to_string()).expect("write");
    let (ok, text) = promtool_ok(&["test", "rules", "wrong.yaml"], dir.path());
    assert!(!ok, "a wrong expectation passed:\n{text}");
}

#[test]
fn the_prometheus_rule_object_passes_the_operator_crd() {
    if !tools_usable("hostctl PrometheusRule schema") {
        return;
    }
    let objects: Vec<Value> = rules::rule_objects(topology::ClusterRole::Mgmt);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("rules.yaml");
    let text: Vec<String> = objects.iter().map(Value::to_string).collect();
    std::fs::write(&path, text.join("\n---\n")).expect("write");
    let (ok, text) = run("validate-manifests", &[path]);
    assert!(ok && text.contains("0 invalid"), "{text}");
}
