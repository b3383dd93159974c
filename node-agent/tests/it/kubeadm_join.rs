//! `Kubeadm.Join` through the real service over mutual TLS, with the
//! kubeadm stand-in: success, retries by failure class (discovery without
//! reset, a failed action after `reset -f`), no retry for validation or
//! preflight, giving up after the configured attempts, and the idempotent
//! rerun on a joined, healthy node.

use crate::kubeadm_support;
use test_support::node_harness as harness;

use harness::TestResult;
use kubeadm_support::{
    Node, collect, dead_endpoints, kubelet_healthz_standin, outcome, phases, start,
};
use proto::v1::{ErrorCode, KubeadmJoinRequest, ProgressEvent};

const CONFIG: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n";

async fn join(node: &Node) -> TestResult<Vec<ProgressEvent>> {
    let req = KubeadmJoinRequest {
        config_yaml: CONFIG.into(),
    };
    collect(node.host().await?.join(req).await).await
}

fn retries(events: &[ProgressEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.phase == "kubeadm/retry")
        .map(|e| e.message.as_str())
        .collect()
}

#[tokio::test]
async fn join_succeeds_and_streams_its_phases() -> TestResult {
    let node = start(false, dead_endpoints()?).await?;
    let events = join(&node).await?;
    assert_eq!(outcome(&events), Ok(false), "{events:#?}");
    assert_eq!(
        phases(&events),
        [
            "kubeadm/[preflight]",
            "kubeadm/[kubelet-start]",
            "kubeadm/[kubelet-check]",
            "kubeadm",
        ]
    );
    assert!(
        events
            .iter()
            .any(|e| e.message == "This node has joined the cluster:")
    );
    let config = node.path("etc/hostctl/kubeadm.yaml");
    assert_eq!(std::fs::read_to_string(&config)?, CONFIG);
    assert_eq!(node.mode("etc/hostctl/kubeadm.yaml")?, 0o600);
    assert_eq!(
        node.calls()?,
        [vec![
            "join".to_owned(),
            "--config".into(),
            config.display().to_string()
        ]]
    );
    Ok(())
}

#[tokio::test]
async fn discovery_failures_are_retried_without_reset() -> TestResult {
    let node = start(false, dead_endpoints()?).await?;
    node.control(r#"{"join": {"fail": "discovery", "times": 2}}"#)?;
    let events = join(&node).await?;
    assert_eq!(outcome(&events), Ok(false), "{events:#?}");
    assert_eq!(node.commands()?, ["join", "join", "join"]);
    let r = retries(&events);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0].contains("attempt 1 of 3 failed (discovery)") && r[0].contains("without reset"));
    Ok(())
}

#[tokio::test]
async fn a_failed_action_is_reset_before_the_retry() -> TestResult {
    let node = start(false, dead_endpoints()?).await?;
    node.control(r#"{"join": {"fail": "kubelet-start", "times": 1}}"#)?;
    let events = join(&node).await?;
    assert_eq!(outcome(&events), Ok(false), "{events:#?}");
    assert_eq!(node.commands()?, ["join", "reset", "join"]);
    assert_eq!(node.calls()?[1], ["reset", "-f"]);
    let r = retries(&events);
    assert!(
        r[0].contains("(kubelet-start)") && r[0].contains("after kubeadm reset -f"),
        "{r:?}"
    );
    // reset's own output is streamed too.
    assert!(events.iter().any(|e| e.phase == "kubeadm/[reset]"));
    Ok(())
}

#[tokio::test]
async fn validation_and_preflight_failures_are_not_retried() -> TestResult {
    for (fail, class) in [("validation", "validation"), ("preflight", "preflight")] {
        let node = start(false, dead_endpoints()?).await?;
        node.control(&format!(r#"{{"join": {{"fail": "{fail}"}}}}"#))?;
        let events = join(&node).await?;
        let err = outcome(&events).err().ok_or("join must fail")?;
        assert_eq!(err.code, ErrorCode::CommandFailed as i32);
        assert!(
            err.message.contains(&format!("({class})")),
            "{}",
            err.message
        );
        assert_eq!(node.commands()?, ["join"], "{fail} must not be retried");
        assert!(retries(&events).is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn retries_stop_after_the_configured_attempts() -> TestResult {
    let node = start(false, dead_endpoints()?).await?;
    node.control(r#"{"join": {"fail": "discovery"}}"#)?;
    let events = join(&node).await?;
    let err = outcome(&events).err().ok_or("join must fail")?;
    assert!(err.message.contains("(discovery)"), "{}", err.message);
    assert!(
        err.detail
            .contains("couldn't validate the identity of the API Server"),
        "{}",
        err.detail
    );
    assert_eq!(node.commands()?, ["join", "join", "join"]);
    Ok(())
}

#[tokio::test]
async fn a_joined_healthy_node_is_already_done() -> TestResult {
    let mut endpoints = dead_endpoints()?;
    endpoints.kubelet = kubelet_healthz_standin()?;
    let node = start(false, endpoints).await?;
    // The kubelet-healthz check applies once kubelet is installed.
    std::fs::create_dir_all(node.path("usr/bin"))?;
    std::fs::write(node.path("usr/bin/kubelet"), "")?;
    assert_eq!(outcome(&join(&node).await?), Ok(false));
    assert_eq!(outcome(&join(&node).await?), Ok(true));
    assert_eq!(node.commands()?, ["join"], "kubeadm must not run again");
    Ok(())
}

/// A join that gave up after writing `kubelet.conf`, on a node whose kubelet
/// then answers, looks joined; the agent's own record says it never
/// succeeded, so the rerun resets and joins again.
#[tokio::test]
async fn a_rerun_after_a_failed_join_resets_and_joins_again() -> TestResult {
    let mut endpoints = dead_endpoints()?;
    endpoints.kubelet = kubelet_healthz_standin()?;
    let node = start(false, endpoints).await?;
    std::fs::create_dir_all(node.path("usr/bin"))?;
    std::fs::write(node.path("usr/bin/kubelet"), "")?;
    node.control(r#"{"join": {"fail": "kubelet-start"}}"#)?;
    assert!(outcome(&join(&node).await?).is_err());
    assert!(node.path("etc/kubernetes/kubelet.conf").is_file());
    let failed_runs = node.commands()?.len();

    node.control("{}")?;
    let again = join(&node).await?;
    assert_eq!(outcome(&again), Ok(false), "{again:#?}");
    assert_eq!(node.commands()?[failed_runs..], ["reset", "join"]);
    assert!(phases(&again).iter().any(|p| p == "kubeadm/recover"));
    assert_eq!(outcome(&join(&node).await?), Ok(true));
    Ok(())
}

#[tokio::test]
async fn joined_but_unhealthy_is_refused_with_the_way_out() -> TestResult {
    let node = start(false, dead_endpoints()?).await?;
    std::fs::create_dir_all(node.path("usr/bin"))?;
    std::fs::write(node.path("usr/bin/kubelet"), "")?;
    assert_eq!(outcome(&join(&node).await?), Ok(false));
    let err = outcome(&join(&node).await?).err().ok_or("must fail")?;
    assert_eq!(err.code, ErrorCode::FailedPrecondition as i32);
    assert!(
        err.message.contains("kubelet.conf") && err.message.contains("Reset"),
        "{}",
        err.message
    );
    Ok(())
}
