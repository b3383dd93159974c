//! The `registry-down` drill with Docker and Harbor's API as STAND-INs
//! (mirrors_lifecycle's: `compose down` removes a project's containers,
//! `up` creates them, status reads `compose ps` and Harbor's health) and
//! app1 as the stand-in API server: a Running pod, and the drill's
//! cached-image pod as the API server reports it once the kubelet runs it.

use crate::mirrors_lifecycle::stand_ins;
use host_agent::mirrors::Endpoints;
use host_agent::mirrors::compose::HostArch;
use host_agent::mirrors::layout::Layout;
use host_agent::mirrors::service::Mirrors;
use host_agent::verify::drill::record::DrillStore;
use host_agent::verify::drill::registry_down::{CACHED_IMAGE, PROBE_POD, run};
use host_agent::verify::drill::{DrillError, Outcome, Pace};
use serde_json::json;
use std::time::Duration;
use test_support::kube_api::{client, pki, start};

#[tokio::test]
async fn harbor_is_stopped_running_pods_and_a_cached_image_keep_going_and_harbor_comes_back() {
    let (home, pki) = pki();
    let lab = pki.lab_root().expect("lab root");
    let layout = Layout::new(home.path());
    let (docker, apis) = stand_ins(&layout);
    let mirrors = Mirrors {
        layout,
        endpoints: Endpoints {
            host: "192.168.64.1".parse().expect("ip"),
        },
        arch: HostArch::Arm64,
        docker: &docker,
        apis: &apis,
        ready_within: Duration::from_secs(60),
    };
    let store = DrillStore::new(home.path());
    let pace = Pace {
        poll: Duration::from_millis(50),
        deadline: Duration::from_secs(60),
        outage_reports: 3,
    };
    let server = start(&pki, "app1").await;
    let clusters = vec![("app1".to_owned(), Ok(client(&pki, "app1", &server).await))];

    // Harbor not deployed yet: refused, nothing stopped.
    let refused = run(&mirrors, Some(lab.cert_pem()), &clusters, &store, pace).await;
    assert!(
        matches!(refused, Err(DrillError::Precondition(ref m)) if m.contains("Harbor is not healthy"))
    );

    let text = format!("{}mirrors:\n  managed: true\n", topology::default_yaml());
    let topology = topology::parse(&text, "t.yaml").expect("topology").topology;
    mirrors.up(&topology, lab).await.expect("mirrors up");
    {
        let mut s = server.state.lock().expect("state");
        s.objects.insert(
            "/api/v1/pods".into(),
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": "cart-7d9", "namespace": "shop"}, "status": {"phase": "Running"}},
                {"metadata": {"name": "job-1", "namespace": "shop"}, "status": {"phase": "Succeeded"}}]}),
        );
        s.objects.insert(
            format!("/api/v1/namespaces/default/pods/{PROBE_POD}"),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": PROBE_POD, "namespace": "default"},
                   "status": {"phase": "Running"}}),
        );
    }
    let report = run(&mirrors, Some(lab.cert_pem()), &clusters, &store, pace)
        .await
        .expect("drill");
    assert_eq!(report.outcome, Outcome::Passed, "{report:#?}");
    let seen: Vec<(&str, String)> = report
        .observations
        .iter()
        .map(|o| (o.promise.as_str(), o.verdict.to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "Harbor can be taken away: stopped for the drill",
                "holds".into()
            ),
            (
                "running pods keep running while Harbor is down",
                "holds".into()
            ),
            (
                "a pod whose image is cached still starts while Harbor is down",
                "holds".into()
            ),
            ("Harbor is healthy again after the drill", "holds".into()),
        ]
    );
    assert_eq!(
        report.observations[1].observed,
        ["app1: all 1 Running pods still Running"]
    );
    // Stopped, then started again; the cached-image pod was applied as the
    // cached image, never pulled.
    let calls = docker.calls.lock().expect("calls").clone();
    let down = calls
        .iter()
        .position(|c| c.starts_with("down "))
        .expect("a down");
    assert!(
        calls[down..].iter().any(|c| c.starts_with("up ")),
        "{calls:?}"
    );
    let apply = server
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.path.ends_with(PROBE_POD))
        .expect("the probe pod was applied");
    let pod: serde_json::Value = serde_json::from_str(&apply.body).expect("json");
    assert_eq!(pod["spec"]["containers"][0]["image"], CACHED_IMAGE);
    assert_eq!(
        pod["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert!(
        store
            .running(host_agent::verify::drill::DrillName::RegistryDown)
            .expect("read")
            .is_empty()
    );
}
