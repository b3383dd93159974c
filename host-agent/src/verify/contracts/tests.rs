//! Each contract on the default topology's rendering holds; each broken
//! on purpose is `broken` with evidence that names the cause.

use super::*;
use crate::verify::rendered::report;
use serde_json::json;

fn resolved() -> topology::Resolved {
    topology::default_topology()
        .resolve(None)
        .expect("default resolves")
}

fn check<'a>(r: &'a crate::verify::Report, contract: &str, cluster: Option<&str>) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.contract == contract && c.cluster.as_deref() == cluster)
        .unwrap_or_else(|| panic!("no {contract} for {cluster:?}: {r:#?}"))
}

#[test]
fn the_default_rendering_keeps_every_contract_it_can_see() {
    let r = report(&resolved(), None).expect("renders");
    assert!(!r.any_broken(), "{r:#?}");
    for app in ["app1", "app2"] {
        for c in ["C1", "C2", "C3", "C5", "C6"] {
            assert_eq!(
                check(&r, c, Some(app)).verdict,
                Verdict::Holds,
                "{c} {app}: {r:#?}"
            );
        }
    }
    // mgmt is not asked C1/C2 (they are about app clusters).
    assert!(
        r.checks
            .iter()
            .all(|c| !(c.cluster.as_deref() == Some("mgmt") && c.contract == "C2"))
    );
    // C1's evidence names what on app1 talks to mgmt, and why it is fine.
    let c1 = check(&r, "C1", Some("app1"));
    assert!(
        c1.evidence
            .iter()
            .any(|e| e.starts_with("prometheus-agent:") && e.contains("WAL")),
        "{c1:#?}"
    );
    assert!(
        c1.evidence.iter().any(|e| e.starts_with("secret-store:")),
        "{c1:#?}"
    );
}

#[test]
fn only_one_cluster_is_checked_when_asked_and_an_unknown_one_is_an_error() {
    let r = report(&resolved(), Some("app2")).expect("renders");
    assert!(
        r.checks
            .iter()
            .all(|c| c.cluster.as_deref() != Some("app1"))
    );
    assert!(
        r.checks
            .iter()
            .any(|c| c.cluster.as_deref() == Some("app2"))
    );
    let err = report(&resolved(), Some("app9")).unwrap_err();
    assert_eq!(err.to_string(), "no cluster app9 in the topology");
}

#[test]
fn c1_is_broken_by_an_addon_that_names_mgmt_without_a_reason_or_an_outside_webhook() {
    let mgmt = [("vault".to_owned(), "192.168.64.201".parse().unwrap())];
    let blocking = Material {
        addon: "my-app",
        values: Some(json!({"image": {"registry": "192.168.64.201:5000"}})),
        objects: vec![
            json!({"kind": "MutatingWebhookConfiguration", "metadata": {"name": "w"},
            "webhooks": [{"clientConfig": {"url": "https://192.168.64.10:443/mutate"}}]}),
        ],
    };
    let c = c1("app1", &[blocking], &mgmt);
    assert_eq!(c.verdict, Verdict::Broken);
    assert!(
        c.evidence
            .iter()
            .any(|e| e.contains("my-app: values names mgmt's vault (192.168.64.201)")),
        "{c:#?}"
    );
    assert!(
        c.evidence
            .iter()
            .any(|e| e.contains("calls https://192.168.64.10:443/mutate")),
        "{c:#?}"
    );
    // A longer address that merely starts the same is not mgmt's.
    assert!(!names_address(
        "http://192.168.64.2011:1",
        "192.168.64.201".parse().unwrap()
    ));
    assert!(!names_address(
        "10.192.168.64.201",
        "192.168.64.201".parse().unwrap()
    ));
    assert!(names_address(
        "https://192.168.64.201:8200",
        "192.168.64.201".parse().unwrap()
    ));
}

#[test]
fn c2_is_broken_by_a_full_prometheus_a_lost_wal_or_a_short_retention() {
    let good = json!({"prometheus": {"agentMode": true, "prometheusSpec": {
        "remoteWrite": [{"url": "http://x/api/v1/receive"}],
        "additionalArgs": [{"name": "storage.agent.retention.max-time", "value": "6h"}],
        "storageSpec": {"volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}}}}});
    assert_eq!(c2("app1", Some(&good)).verdict, Verdict::Holds);
    let mut short = good.clone();
    short["prometheus"]["prometheusSpec"]["additionalArgs"][0]["value"] = json!("2h");
    let c = c2("app1", Some(&short));
    assert_eq!(c.verdict, Verdict::Broken);
    assert_eq!(
        c.evidence,
        ["storage.agent.retention.max-time 2h is shorter than the spec's 2h42m"]
    );
    let mut full = good.clone();
    full["prometheus"]["agentMode"] = json!(false);
    full["prometheus"]["prometheusSpec"]["storageSpec"] = json!({});
    let c = c2("app1", Some(&full));
    assert_eq!(c.evidence.len(), 2, "{c:#?}");
    assert_eq!(c2("app1", None).verdict, Verdict::NotInstalled);
}

#[test]
fn c3_is_broken_by_a_two_hour_refresh() {
    let store = json!({"kind": "ClusterSecretStore", "metadata": {"name": "vault"}});
    let secret = |every: &str| {
        json!({"kind": "ExternalSecret",
        "metadata": {"name": "db", "namespace": "shop"}, "spec": {"refreshInterval": every}})
    };
    assert_eq!(
        c3("app1", &[store.clone(), secret("1h")]).verdict,
        Verdict::Holds
    );
    let c = c3("app1", &[store, secret("2h")]);
    assert_eq!(c.verdict, Verdict::Broken);
    assert_eq!(
        c.evidence,
        ["ExternalSecret shop/db refreshes every 2h, not 1h"]
    );
    assert_eq!(c3("app1", &[]).verdict, Verdict::NotInstalled);
}

#[test]
fn c4_is_broken_by_a_kyverno_step_planned_for_mgmt() {
    let kyverno = |deny: bool| Material {
        addon: "kyverno",
        values: Some(json!({})),
        objects: vec![
            json!({"kind": "ValidatingPolicy", "metadata": {"name": "require-limits"},
            "spec": {"validationActions": [if deny { "Deny" } else { "Audit" }]}}),
        ],
    };
    let placed = |mgmt: bool, deny: bool| {
        vec![
            (
                "mgmt".to_owned(),
                ClusterRole::Mgmt,
                if mgmt { vec![kyverno(deny)] } else { vec![] },
            ),
            ("app1".to_owned(), ClusterRole::App, vec![kyverno(deny)]),
        ]
    };
    assert_eq!(c4(&placed(false, true)).verdict, Verdict::Holds);
    let c = c4(&placed(true, true));
    assert_eq!(c.verdict, Verdict::Broken);
    assert_eq!(c.evidence, ["mgmt (mgmt) has a kyverno step"]);
    let c = c4(&placed(false, false));
    assert_eq!(
        c.evidence,
        ["app1: Kyverno without an enforcing (Deny) policy"]
    );
    let none = vec![("app1".to_owned(), ClusterRole::App, vec![])];
    assert_eq!(c4(&none).verdict, Verdict::NotInstalled);
}

#[test]
fn c5_is_broken_when_vaults_issuer_does_not_wait_for_the_lab_ca() {
    use crate::addons::cert_manager::LAB_CA;
    use crate::addons::vault::issuer::ISSUER;
    assert_eq!(c5("app1", &[&LAB_CA, &ISSUER]).verdict, Verdict::Holds);
    let mut early = ISSUER;
    early.depends_on = &[];
    let c = c5("app1", &[&LAB_CA, &early]);
    assert_eq!(c.verdict, Verdict::Broken);
    assert_eq!(
        c.evidence,
        ["vault-issuer does not wait for lab-ca: phase 2 could come first"]
    );
    assert_eq!(c5("app1", &[&LAB_CA]).verdict, Verdict::CannotTell);
}

#[test]
fn c6_is_broken_by_native_routing_or_geneve() {
    let good = json!({"routingMode": "tunnel", "tunnelProtocol": "vxlan"});
    assert_eq!(c6("app1", &good).verdict, Verdict::Holds);
    let c = c6(
        "app1",
        &json!({"routingMode": "native", "tunnelProtocol": "geneve"}),
    );
    assert_eq!(c.verdict, Verdict::Broken);
    assert_eq!(
        c.evidence,
        [
            "cilium routingMode is \"native\", not \"tunnel\"",
            "cilium tunnelProtocol is \"geneve\", not \"vxlan\""
        ]
    );
}
