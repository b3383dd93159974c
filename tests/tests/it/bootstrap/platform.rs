//! The platform add-ons through the whole `up` graph, on mgmt: cert-manager,
//! its lab CA, Vault (a real OpenBao on the host's loopback), External
//! Secrets, Argo CD and the observability stack in dependency order, each waiting for the readiness
//! the stand-in API server reports, resuming after a failed install
//! without reinstalling what is done; `addons status`, `vault status` and
//! `status` show the result.

use super::Rig;
use host_agent::orchestrator::{StepStatus, UpState};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use tests::bootstrap::calls;
use tests::kube_api::State;

/// The readiness the stand-in reports: every other add-on ready at once,
/// Argo CD's CRDs Established after one look and its Deployments available
/// after two, as a controller would bring them up.
fn argocd_coming_up() -> State {
    use tests::kube_api::{crd, deployment, statefulset};
    let mut state = State {
        objects: tests::bootstrap::ready_addon_objects(topology::ClusterRole::Mgmt),
        ..State::default()
    };
    let addon = host_agent::addons::Addon::named("argocd").expect("catalogue has argocd");
    for r in addon.readiness {
        let (later, (path, ready)) = match *r {
            host_agent::addons::Readiness::Crd(name) => (1, crd(name, true)),
            host_agent::addons::Readiness::Deployment(name) => {
                (2, deployment(addon.namespace, name, true))
            }
            host_agent::addons::Readiness::StatefulSet(name) => {
                (0, statefulset(addon.namespace, name, true))
            }
            other => panic!("no stand-in readiness for {other:?}"),
        };
        state.objects.remove(&path);
        state.later.insert(path, (later, ready));
    }
    state
}

#[test]
fn platform_addons_install_in_order_wait_for_readiness_and_resume_after_a_failure() {
    if !tests::can_run_netns("bootstrap") {
        return;
    }
    let mut rig = Rig::for_cluster(73, "mgmt");
    // mgmt's Vault is a real OpenBao server on the host's loopback.
    let Some((vault, var)) = tests::bootstrap::vault_for_up(rig.env.home(), "bootstrap vault")
    else {
        return;
    };
    rig.vars.push(var);
    let mut state = argocd_coming_up();
    // Argo CD's registrations fail once: the API refuses the first
    // ApplicationSet (as an admission webhook would).
    state.patch_errors.insert(
        "platform-app".into(),
        (
            422,
            tests::kube_api::status(422, "Invalid", "denied by the stand-in"),
        ),
    );
    let api = rig.api_with(state);
    let out = rig.up();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "up succeeded:\n{stderr}");
    assert!(stderr.contains("addon/mgmt/argocd-platform"), "{stderr}");
    assert!(stderr.contains("denied by the stand-in"), "{stderr}");
    let status_of = |state: &UpState, id: &str| {
        state
            .steps
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, r)| r.status)
    };
    let state = rig.state();
    assert_eq!(
        status_of(&state, "addon/mgmt/argocd"),
        Some(StepStatus::Done)
    );
    assert_eq!(
        status_of(&state, "addon/mgmt/argocd-platform"),
        Some(StepStatus::Failed)
    );

    // Order: Argo CD's chart, then its readiness as the API reported it
    // (every Deployment read until available), then its registrations.
    let requests = api.requests();
    let position = |pred: &dyn Fn(&tests::kube_api::Recorded) -> bool| {
        requests
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("no such request in {requests:#?}"))
    };
    let deployment_gets = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/deployments/argocd-server"))
        .count();
    assert!(
        deployment_gets >= 3,
        "argocd-server was read {deployment_gets} time(s): readiness was not waited for"
    );
    let last_ready_read = requests
        .iter()
        .rposition(|r| r.method == "GET" && r.path.contains("/namespaces/argocd/"))
        .unwrap_or_default();
    let first_registration =
        position(&|r| r.method == "PATCH" && r.path.contains("/namespaces/argocd/secrets/"));
    assert!(
        last_ready_read < first_registration,
        "registrations were applied before Argo CD was ready"
    );
    let helm_upgrades = |calls: &[Value], release: &str| {
        calls
            .iter()
            .filter(|c| c["argv"][0] == "upgrade" && c["argv"][2] == release)
            .count()
    };
    let helm = calls(&rig.helm_dir.join("calls.jsonl"));
    assert_eq!(helm_upgrades(&helm, "argocd"), 1, "{helm:?}");
    let install = helm
        .iter()
        .find(|c| c["argv"][2] == "argocd")
        .expect("argocd install");
    let argv: Vec<&str> = install["argv"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        argv.windows(2).any(|w| w == ["--version", "10.1.1"]),
        "{argv:?}"
    );
    assert!(!argv.contains(&"--wait"), "hostctl waits itself: {argv:?}");
    assert!(
        install["values"]
            .as_str()
            .unwrap_or_default()
            .contains("dex:\n  enabled: false"),
        "{install}"
    );

    // The failure cleared, a rerun resumes: Argo CD is not installed again,
    // its registrations are applied.
    api.state
        .lock()
        .expect("state")
        .patch_errors
        .remove("platform-app");
    let again = rig.up_ok();
    let helm = calls(&rig.helm_dir.join("calls.jsonl"));
    assert_eq!(helm_upgrades(&helm, "argocd"), 1, "reinstalled:\n{again}");
    let state = rig.state();
    for id in ["addon/mgmt/argocd", "addon/mgmt/argocd-platform"] {
        assert_eq!(status_of(&state, id), Some(StepStatus::Done), "{id}");
    }
    let applied: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path.clone())
        .collect();
    for object in [
        "/namespaces/argocd/secrets/cluster-mgmt",
        "/namespaces/argocd/secrets/repo-platform",
        "/namespaces/argocd/appprojects/platform",
        "/namespaces/argocd/applicationsets/platform-app",
        "/namespaces/argocd/applicationsets/platform-mgmt",
    ] {
        assert!(
            applied.iter().any(|p| p.ends_with(object)),
            "{object} not applied: {applied:?}"
        );
    }

    // addons status shows the result, as the cluster reports it.
    let text = rig
        .env
        .hostctl_ok(&["addons", "status", "mgmt", "-o", "json"]);
    let status: Value = serde_json::from_str(&text).expect("status json");
    let named = |status: &Value, name: &str| -> Value {
        status["clusters"][0]["addons"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no add-on {name} in {status}"))
    };
    let argocd = named(&status, "argocd");
    assert_eq!(argocd["installed_version"], "10.1.1", "{text}");
    assert_eq!(argocd["state"], "done", "{text}");
    assert_eq!(argocd["ready"], true, "{text}");
    assert_eq!(named(&status, "argocd-platform")["state"], "done", "{text}");
    // Phase 1 of the PKI came first: cert-manager, then its lab-CA issuer,
    // ready when the API reports the ClusterIssuer's Ready condition.
    for name in ["cert-manager", "lab-ca", "vault"] {
        assert_eq!(named(&status, name)["state"], "done", "{text}");
        assert_eq!(named(&status, name)["ready"], true, "{text}");
    }
    // Vault was bootstrapped through its API by the add-on's step: the
    // real server is initialised and unsealed, the key files are private.
    let said = rig.env.hostctl_with_env(
        &["-o", "json", "vault", "status"],
        &[("HOSTCTL_VAULT_ADDRESS", vault.address().as_str())],
    );
    let vault_status: Value = serde_json::from_slice(&said.stdout).expect("vault status json");
    assert_eq!(vault_status["initialized"], true, "{vault_status}");
    assert_eq!(vault_status["sealed"], false, "{vault_status}");
    let keys = rig.env.home().join("pki/vault");
    for file in ["unseal.key", "admin.token"] {
        let mode = std::fs::metadata(keys.join(file))
            .expect(file)
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    assert!(
        applied
            .iter()
            .any(|p| p.ends_with("/clusterissuers/lab-ca")),
        "{applied:?}"
    );
    // Observability came up in dependency order: the stack before Thanos
    // (its sidecar is a Query endpoint), Thanos, Loki and Tempo before
    // Grafana (its datasources), each waited for.
    let order: Vec<String> = helm
        .iter()
        .filter(|c| c["argv"][0] == "upgrade")
        .filter_map(|c| c["argv"][2].as_str().map(str::to_owned))
        .collect();
    let at = |release: &str| {
        order
            .iter()
            .position(|r| r == release)
            .unwrap_or_else(|| panic!("{release} not installed: {order:?}"))
    };
    assert!(at("prometheus-stack") < at("thanos"), "{order:?}");
    assert!(
        at("thanos") < at("grafana") && at("loki") < at("grafana"),
        "{order:?}"
    );
    assert!(
        applied
            .iter()
            .any(|p| p.ends_with("/namespaces/monitoring/deployments/tempo")),
        "{applied:?}"
    );
    for name in [
        "prometheus-stack",
        "thanos",
        "loki",
        "tempo",
        "grafana",
        "alloy",
    ] {
        assert_eq!(named(&status, name)["state"], "done", "{text}");
        assert_eq!(named(&status, name)["ready"], true, "{text}");
    }
    // … and why not, when not: a Deployment that loses its pod.
    let (path, down) = tests::kube_api::deployment("argocd", "argocd-repo-server", false);
    api.state.lock().expect("state").objects.insert(path, down);
    let text = rig
        .env
        .hostctl_ok(&["addons", "status", "mgmt", "-o", "json"]);
    let status: Value = serde_json::from_str(&text).expect("status json");
    let argocd = named(&status, "argocd");
    assert_eq!(argocd["ready"], false, "{text}");
    assert!(
        argocd["why_not"]
            .as_str()
            .unwrap_or_default()
            .contains("argocd-repo-server available: 0/1 available"),
        "{text}"
    );
    status_reads_the_shippers(&rig, &api);
    verify_reads_the_live_cluster(&rig);
    super::vault_drill::vault_down(&rig, &api, vault.address().as_str());
    api.stop();
    rig.env.finish();
}

/// `status` reads Alloy's Loki writes through the API server's pod proxy
/// and the newest sample through Thanos Query's service proxy, and says
/// k8sgpt is off (the default topology chooses no backend).
fn status_reads_the_shippers(rig: &Rig, api: &tests::bootstrap::NetnsApi) {
    let ns = "/api/v1/namespaces/monitoring";
    {
        let mut s = api.state.lock().expect("state");
        s.objects.insert(
            format!("{ns}/pods"),
            serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                "items": [{"metadata": {"name": "alloy-x1", "namespace": "monitoring"}}]}),
        );
        s.texts.insert(
            format!("{ns}/pods/alloy-x1:12345/proxy/metrics"),
            "# TYPE loki_write_sent_entries_total counter\n\
             loki_write_sent_entries_total{component_id=\"loki.write.mgmt\"} 42\n\
             loki_write_dropped_entries_total{component_id=\"loki.write.mgmt\"} 1\n"
                .into(),
        );
        s.objects.insert(
            format!("{ns}/services/http:thanos-query:10902/proxy/api/v1/query"),
            serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"cluster": "mgmt"}, "value": [1700000100.0, "1700000070"]}]}}),
        );
    }
    let text = rig.env.hostctl_ok(&["status", "-o", "json"]);
    let status: Value = serde_json::from_str(&text).expect("status json");
    let o = &status["observability"];
    assert_eq!(o["k8sgpt"]["on"], false, "{text}");
    assert_eq!(
        status["policy"]["clusters"],
        serde_json::json!([{"cluster": "mgmt", "kyverno": "never"}]),
        "C4: no Kyverno on mgmt: {text}"
    );
    let mgmt = &o["clusters"][0];
    assert_eq!(mgmt["cluster"], "mgmt", "{text}");
    assert!(mgmt.get("metrics").is_none(), "mgmt runs no agent: {text}");
    let logs = &mgmt["logs"]["ok"];
    assert_eq!(
        (logs["shippers"].as_u64(), logs["answering"].as_u64()),
        (Some(1), Some(1)),
        "{text}"
    );
    assert_eq!(logs["sent_entries"], 42.0, "{text}");
    assert_eq!(logs["dropped_entries"], 1.0, "{text}");
    assert_eq!(mgmt["newest_sample_age_seconds"]["ok"], 30, "{text}");
    let asked = api.requests();
    let list = asked
        .iter()
        .find(|r| r.path == format!("{ns}/pods"))
        .expect("the Alloy pods were listed");
    assert!(
        list.query
            .contains("labelSelector=app.kubernetes.io%2Fname%3Dalloy"),
        "{}",
        list.query
    );
    assert!(
        asked
            .iter()
            .any(|r| r.path.ends_with("/proxy/api/v1/query") && r.query.contains("timestamp(up)")),
        "Thanos Query was not asked"
    );
}

/// `verify` adds live evidence for the cluster `up` built: C5 from the
/// issuers' conditions the stand-in holds, and nothing is broken.
fn verify_reads_the_live_cluster(rig: &Rig) {
    let text = rig
        .env
        .hostctl_ok(&["-o", "json", "verify", "--cluster", "mgmt"]);
    let report: Value = serde_json::from_str(&text).expect("verify json");
    let live: Vec<&Value> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["source"] == "live")
        .collect();
    let c5 = live
        .iter()
        .find(|c| c["contract"] == "C5")
        .unwrap_or_else(|| panic!("no live C5: {text}"));
    assert_eq!(c5["verdict"], "holds", "{text}");
    assert!(live.iter().all(|c| c["verdict"] != "broken"), "{text}");
}
