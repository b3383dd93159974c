//! `status`'s policy rows after `up` installed Kyverno on app1: the
//! policies hostctl renders, served back by the stand-in API server as
//! Kyverno 1.19 lists them (`policies.kyverno.io/v1`), and a
//! `wgpolicyk8s.io/v1alpha2` PolicyReport as its reports controller files
//! one, counted into audit violations.

use super::Rig;
use host_agent::addons::kyverno::policies::{AUDITED, ENFORCED, render_for};
use serde_json::{Value, json};
use tests::bootstrap::NetnsApi;

pub(super) fn status_reads_kyverno(rig: &Rig, api: &NetnsApi) {
    {
        let mut s = api.state.lock().expect("state");
        s.objects.insert(
            "/apis/policies.kyverno.io/v1/validatingpolicies".into(),
            json!({"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicyList",
                   "metadata": {}, "items": render_for(&["registry.lab:8443".to_owned()])}),
        );
        let result = |policy: &str, outcome: &str| {
            json!({"policy": policy, "result": outcome, "source": "KyvernoValidatingPolicy",
                   "scored": true, "timestamp": {"seconds": 1700000000, "nanos": 0}})
        };
        s.objects.insert(
            "/apis/wgpolicyk8s.io/v1alpha2/policyreports".into(),
            json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReportList",
                   "metadata": {}, "items": [{
                       "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
                       "metadata": {"name": "0b6c4f5e", "namespace": "shop"},
                       "scope": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cart"},
                       "summary": {"pass": 4, "fail": 2, "warn": 0, "error": 0, "skip": 0},
                       "results": [result(AUDITED, "fail"), result(ENFORCED[0], "fail"),
                                   result(ENFORCED[1], "pass")]}]}),
        );
    }
    let text = rig.env.hostctl_ok(&["status", "-o", "json"]);
    let status: Value = serde_json::from_str(&text).expect("status json");
    let row = status["policy"]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["cluster"] == "app1")
        .unwrap_or_else(|| panic!("no app1 policy row: {text}"));
    let live = &row["kyverno"]["live"];
    assert_eq!(live["admission"], true, "{text}");
    assert_eq!(live["enforced"], json!(ENFORCED), "{text}");
    assert_eq!(live["audited"], json!([AUDITED]), "{text}");
    assert_eq!(
        live["audit_violations"], 1,
        "only the audited policy's fail counts: {text}"
    );
    let table = rig.env.hostctl_ok(&["status"]);
    assert!(
        table.contains(&format!("app1: kyverno enforcing {}", ENFORCED.join(", "))),
        "{table}"
    );
    assert!(table.contains("1 audit violation"), "{table}");
}
