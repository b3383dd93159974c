//! "nodes Ready" and cluster health against the stand-in API server.

use test_support::kube_api as kube_support;

use host_agent::cluster_api::KubeError;
use host_agent::cluster_api::health::health_with_client;
use host_agent::cluster_api::ready::wait_nodes_ready;
use kube_support::{client, node, pki, start};
use std::time::Duration;

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| (*s).to_owned()).collect()
}

const POLL: Duration = Duration::from_millis(50);

#[tokio::test]
async fn all_nodes_ready_passes_with_the_minted_client_over_mtls() {
    let (_home, pki) = pki();
    let server = start(&pki, "mgmt").await;
    server.set_nodes(vec![node("mgmt-cp", true), node("mgmt-worker-1", true)]);
    let c = client(&pki, "mgmt", &server).await;
    let report = wait_nodes_ready(
        &c,
        &names(&["mgmt-cp", "mgmt-worker-1"]),
        Duration::from_secs(5),
        POLL,
    )
    .await
    .expect("ready");
    assert_eq!(report.ratio(), "2/2");
    let req = &server.requests()[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/api/v1/nodes")
    );
}

#[tokio::test]
async fn not_ready_without_cni_times_out_naming_the_node_and_no_cni_yet() {
    let (_home, pki) = pki();
    let server = start(&pki, "app1").await;
    server.set_nodes(vec![node("app1-cp", false)]);
    let c = client(&pki, "app1", &server).await;
    let err = wait_nodes_ready(
        &c,
        &names(&["app1-cp", "app1-worker-1"]),
        Duration::from_millis(300),
        POLL,
    )
    .await
    .expect_err("not ready");
    assert!(
        matches!(
            err,
            KubeError::Timeout {
                check: "nodes Ready",
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("app1-cp NotReady (no CNI yet)"), "{text}");
    assert!(text.contains("app1-worker-1 not registered"), "{text}");
    assert!(text.contains("0/2 Ready"), "{text}");
    assert!(server.requests().len() >= 2, "it polled");
}

#[tokio::test]
async fn becomes_ready_while_waiting() {
    let (_home, pki) = pki();
    let server = start(&pki, "app2").await;
    server.set_nodes(vec![node("app2-cp", false)]);
    let c = client(&pki, "app2", &server).await;
    let state = server.state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        state.lock().expect("state").nodes = vec![kube_support::node("app2-cp", true)];
    });
    let report = wait_nodes_ready(&c, &names(&["app2-cp"]), Duration::from_secs(5), POLL)
        .await
        .expect("ready after Cilium");
    assert!(report.all_ready());
}

#[tokio::test]
async fn unreachable_api_server_times_out_with_the_transport_error() {
    let (_home, pki) = pki();
    let server = start(&pki, "mgmt").await;
    let yaml = pki
        .cluster("mgmt")
        .expect("cluster")
        .mint_admin_kubeconfig("mgmt", "https://127.0.0.1:1", "mgmt")
        .expect("mint");
    drop(server);
    let c = host_agent::cluster_api::client::client_from_kubeconfig(
        "mgmt",
        &yaml,
        Duration::from_secs(1),
    )
    .await
    .expect("client");
    let err = wait_nodes_ready(&c, &names(&["mgmt-cp"]), Duration::from_millis(200), POLL)
        .await
        .expect_err("unreachable");
    assert!(err.to_string().contains("unreachable"), "{err}");
}

#[tokio::test]
async fn health_separates_api_up_from_nodes_ready() {
    let (_home, pki) = pki();
    let server = start(&pki, "mgmt").await;
    server.set_nodes(vec![node("mgmt-cp", true), node("mgmt-worker-1", false)]);
    let c = client(&pki, "mgmt", &server).await;
    let h = health_with_client(&c, "mgmt", &names(&["mgmt-cp", "mgmt-worker-1"])).await;
    assert!(h.api.ok, "{h:?}");
    assert_eq!(h.api.version.as_deref(), Some("v1.35.2"));
    assert_eq!(h.nodes_ready.as_deref(), Some("1/2"));
    assert!(
        h.nodes_detail
            .as_deref()
            .unwrap_or_default()
            .contains("mgmt-worker-1 NotReady (no CNI yet)")
    );

    server.state.lock().expect("state").readyz_down = true;
    let h = health_with_client(&c, "mgmt", &names(&["mgmt-cp"])).await;
    assert!(!h.api.ok);
    assert!(
        h.api
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("/readyz"),
        "{h:?}"
    );
    assert_eq!(h.nodes_ready, None);
}
