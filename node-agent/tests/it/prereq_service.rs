//! `Provisioning.InstallPrerequisites` over mutual TLS on a running agent
//! (the harness config selects the recording stand-in): who may call it,
//! and that the stream ends with done and writes under the node's root.

use test_support::node_harness as harness;

use std::time::Duration;

use harness::{RunningAgent, TestResult};
use proto::v1::PrerequisitesRequest;
use proto::v1::progress_event::Outcome;
use proto::v1::provisioning_client::ProvisioningClient;
use tonic::transport::{Channel, Identity};

async fn client(agent: &RunningAgent, id: Identity) -> TestResult<ProvisioningClient<Channel>> {
    Ok(ProvisioningClient::new(
        agent.channel(Some(id), Duration::from_secs(30)).await?,
    ))
}

fn request() -> PrerequisitesRequest {
    PrerequisitesRequest {
        kubernetes_version: "v1.35.0".into(),
        apt_proxy: String::new(),
        ..PrerequisitesRequest::default()
    }
}

#[tokio::test]
async fn the_host_runs_it_a_node_certificate_is_refused() -> TestResult {
    let agent = RunningAgent::start().await?;
    let (pki, root) = (&agent.pki, &agent.root);

    let status = client(&agent, pki.node_identity("n2")?)
        .await?
        .install_prerequisites(request())
        .await
        .err()
        .ok_or("a node certificate was served")?;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
    assert!(
        !root.path().join("etc").exists(),
        "a refused call changed the node"
    );

    let mut host_client = client(&agent, pki.host_identity()).await?;
    let bad = PrerequisitesRequest {
        kubernetes_version: "latest".into(),
        ..request()
    };
    let status = host_client
        .install_prerequisites(bad)
        .await
        .err()
        .ok_or("a bad version was accepted")?;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");

    let mut stream = host_client
        .install_prerequisites(request())
        .await?
        .into_inner();
    let mut last = None;
    while let Some(event) = stream.message().await? {
        assert_eq!(event.meta.as_ref().map(|m| m.node.as_str()), Some("n1"));
        last = Some(event);
    }
    let last = last.ok_or("no events")?;
    assert!(matches!(last.outcome, Some(Outcome::Done(_))), "{last:?}");
    assert!(root.path().join("etc/containerd/config.toml").exists());
    assert!(root.path().join("var/log/hostctl/commands.jsonl").exists());
    drop(agent);
    Ok(())
}
