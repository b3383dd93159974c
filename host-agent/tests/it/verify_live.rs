//! `verify`'s live checks against the stand-in API server, holding objects
//! shaped as the real components publish them: Cilium 1.18's
//! `kube-system/cilium-config` keys, cert-manager's ClusterIssuer `Ready`
//! conditions (reasons `KeyPairVerified`, `VaultVerified`), External
//! Secrets v1's `Ready`/`SecretSynced` status, the API server's
//! PartialObjectMetadata for a Secret (no data is asked for), admission
//! webhook lists, and the Prometheus agent's remote-write series.

use host_agent::verify::live::cluster_checks;
use host_agent::verify::{Check, Source, Verdict};
use serde_json::{Value, json};
use test_support::kube_api::{ApiServer, client, pki, start};
use topology::ClusterRole;

fn ready(reason: &str) -> Value {
    json!({"conditions": [{"type": "Ready", "status": "True", "reason": reason, "message": "ok"}]})
}

fn issuer(name: &str, reason: &str) -> Value {
    json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
           "metadata": {"name": name}, "spec": {}, "status": ready(reason)})
}

fn external_secret(refresh: &str) -> Value {
    json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecretList", "metadata": {},
        "items": [{"metadata": {"name": "platform-sample", "namespace": "external-secrets"},
            "spec": {"refreshInterval": refresh, "target": {"name": "platform-sample"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced",
                                       "message": "secret synced"}]}}]})
}

fn agent_metrics(behind: u64) -> String {
    format!(
        "prometheus_remote_storage_highest_timestamp_in_seconds 1700000000\n\
         prometheus_remote_storage_queue_highest_sent_timestamp_seconds{{remote_name=\"a\",url=\"u\"}} {}\n",
        1_700_000_000 - behind
    )
}

const ESO: &str = "/apis/external-secrets.io/v1/externalsecrets";
const CILIUM: &str = "/api/v1/namespaces/kube-system/configmaps/cilium-config";
const AGENT: &str = "/api/v1/namespaces/monitoring/services/http:kps-prometheus:9090/proxy/metrics";
const MUTATING: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

/// app1 as `up` leaves it: every contract's evidence in place.
fn healthy(server: &ApiServer) {
    let mut s = server.state.lock().expect("state");
    s.objects.insert(
        CILIUM.into(),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cilium-config", "namespace": "kube-system"},
            "data": {"routing-mode": "tunnel", "tunnel-protocol": "vxlan", "cluster-name": "app1"}}),
    );
    let issuers = "/apis/cert-manager.io/v1/clusterissuers";
    s.objects.insert(
        format!("{issuers}/lab-ca"),
        issuer("lab-ca", "KeyPairVerified"),
    );
    s.objects
        .insert(format!("{issuers}/vault"), issuer("vault", "VaultVerified"));
    s.objects.insert(ESO.into(), external_secret("1h"));
    s.objects.insert(
        "/api/v1/namespaces/external-secrets/secrets/platform-sample".into(),
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
               "metadata": {"name": "platform-sample", "namespace": "external-secrets"}}),
    );
    s.objects.insert(
        MUTATING.into(),
        json!({"kind": "MutatingWebhookConfigurationList", "apiVersion": "admissionregistration.k8s.io/v1",
            "metadata": {}, "items": [{"metadata": {"name": "cert-manager-webhook"},
                "webhooks": [{"name": "webhook.cert-manager.io", "clientConfig":
                    {"service": {"name": "cert-manager-webhook", "namespace": "cert-manager"}}}]}]}),
    );
    s.texts.insert(AGENT.into(), agent_metrics(12));
}

fn of<'a>(checks: &'a [Check], contract: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.contract == contract)
        .unwrap_or_else(|| panic!("no {contract}: {checks:#?}"))
}

#[tokio::test]
async fn a_healthy_app_cluster_keeps_its_contracts_and_each_breakage_is_named() {
    let (_home, pki) = pki();
    let server = start(&pki, "app1").await;
    healthy(&server);
    let c = client(&pki, "app1", &server).await;
    let checks = cluster_checks(&c, "app1", ClusterRole::App).await;
    assert!(checks.iter().all(|c| c.source == Source::Live));
    for contract in ["C1", "C2", "C3", "C5", "C6"] {
        assert_eq!(
            of(&checks, contract).verdict,
            Verdict::Holds,
            "{:#?}",
            of(&checks, contract)
        );
    }
    assert_eq!(
        of(&checks, "C2").evidence,
        ["remote write is 12 s behind, within the 14400 s the WAL keeps"]
    );
    // The target Secret is looked up (`get_metadata`: the API server
    // answers PartialObjectMetadata, no values).
    let secret_get = server
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/secrets/platform-sample"))
        .expect("the Secret was looked up");
    assert_eq!(secret_get.method, "GET");
    match host_agent::addons::Addon::named("kyverno") {
        None => assert_eq!(of(&checks, "C4").verdict, Verdict::NotInstalled),
        Some(_) => assert_eq!(
            of(&checks, "C4").verdict,
            Verdict::Broken,
            "no admission controller"
        ),
    }

    // Break each on purpose.
    {
        let mut s = server.state.lock().expect("state");
        s.objects.get_mut(CILIUM).expect("cm")["data"]["tunnel-protocol"] = json!("geneve");
        s.objects.insert(ESO.into(), external_secret("2h"));
        s.objects
            .remove("/api/v1/namespaces/external-secrets/secrets/platform-sample");
        s.objects
            .get_mut("/apis/cert-manager.io/v1/clusterissuers/vault")
            .expect("vault")["status"] = json!({"conditions": [{"type": "Ready", "status": "False", "reason": "VaultError",
                                   "message": "Failed to initialize Vault client"}]});
        s.objects.get_mut(MUTATING).expect("hooks")["items"][0]["webhooks"][0]["clientConfig"] =
            json!({"url": "https://192.168.64.201:9443/mutate"});
        s.texts.insert(AGENT.into(), agent_metrics(7 * 3600));
    }
    let checks = cluster_checks(&c, "app1", ClusterRole::App).await;
    let evidence = |contract: &str| {
        let check = of(&checks, contract);
        assert_eq!(check.verdict, Verdict::Broken, "{check:#?}");
        check.evidence.join("\n")
    };
    assert!(evidence("C6").contains("tunnel-protocol is \"geneve\""));
    let c3 = evidence("C3");
    assert!(c3.contains("refreshes every 2h, not 1h"), "{c3}");
    assert!(c3.contains("Secret platform-sample is missing"), "{c3}");
    assert!(evidence("C5").contains("ClusterIssuer vault is not Ready: VaultError"));
    assert!(evidence("C1").contains(
        "MutatingWebhookConfiguration cert-manager-webhook calls https://192.168.64.201:9443/mutate"
    ));
    assert!(evidence("C2").contains("samples are being lost"));
}

#[tokio::test]
async fn a_cluster_without_the_components_says_not_installed_and_mgmt_is_not_asked_c1_c2() {
    let (_home, pki) = pki();
    let server = start(&pki, "mgmt").await;
    let c = client(&pki, "mgmt", &server).await;
    let checks = cluster_checks(&c, "mgmt", ClusterRole::Mgmt).await;
    assert!(
        checks
            .iter()
            .all(|c| c.contract != "C1" && c.contract != "C2"),
        "{checks:#?}"
    );
    for contract in ["C3", "C5", "C6"] {
        assert_eq!(
            of(&checks, contract).verdict,
            Verdict::NotInstalled,
            "{contract}"
        );
    }
}

/// Kyverno 1.19 as it publishes itself: the chart's admission-controller
/// Deployment, `policies.kyverno.io/v1` ValidatingPolicies, and a
/// `wgpolicyk8s.io/v1alpha2` PolicyReport from its reports controller.
fn kyverno(server: &ApiServer, validation_actions: &str) {
    use host_agent::addons::kyverno::live::{POLICIES_PATH, REPORTS_PATH, admission_path};
    let mut s = server.state.lock().expect("state");
    s.objects.insert(
        admission_path(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "kyverno-admission-controller", "namespace": "kyverno"}}),
    );
    s.objects.insert(
        POLICIES_PATH.into(),
        json!({"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicyList", "metadata": {},
            "items": [
                {"metadata": {"name": "disallow-privileged"}, "spec": {"validationActions": [validation_actions]}},
                {"metadata": {"name": "require-app-version-labels"}, "spec": {"validationActions": ["Audit"]}}]}),
    );
    s.objects.insert(
        REPORTS_PATH.into(),
        json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReportList", "metadata": {},
            "items": [{"metadata": {"name": "r1", "namespace": "shop"}, "results": [
                {"policy": "require-app-version-labels", "result": "fail"},
                {"policy": "require-app-version-labels", "result": "fail"}]}]}),
    );
}

#[tokio::test]
async fn c4_holds_with_kyverno_enforcing_on_app_and_breaks_when_it_only_audits_or_runs_on_mgmt() {
    let (_home, pki) = pki();
    let server = start(&pki, "app1").await;
    kyverno(&server, "Deny");
    let c = client(&pki, "app1", &server).await;
    let checks = cluster_checks(&c, "app1", ClusterRole::App).await;
    let c4 = of(&checks, "C4");
    assert_eq!(c4.verdict, Verdict::Holds, "{c4:#?}");
    assert_eq!(
        c4.evidence,
        [
            "Kyverno enforcing disallow-privileged; auditing require-app-version-labels (2 audit violations)"
        ]
    );
    kyverno(&server, "Audit");
    let checks = cluster_checks(&c, "app1", ClusterRole::App).await;
    assert_eq!(of(&checks, "C4").verdict, Verdict::Broken);
    let checks = cluster_checks(&c, "mgmt", ClusterRole::Mgmt).await;
    assert_eq!(
        of(&checks, "C4").evidence,
        ["Kyverno's admission controller runs on mgmt"]
    );
}
