//! `Provisioning.InstallPrerequisites` over mutual TLS on a running agent
//! (the harness config selects the recording stand-in): who may call it,
//! and that the stream ends with done and writes under the node's root.

mod harness;

use std::time::Duration;

use harness::{HarnessHost, TestPki, TestResult, install_crypto, node_config};
use node_agent::agent;
use proto::v1::PrerequisitesRequest;
use proto::v1::progress_event::Outcome;
use proto::v1::provisioning_client::ProvisioningClient;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, Identity};

async fn client(
    pki: &TestPki,
    addr: std::net::SocketAddr,
    id: Identity,
) -> TestResult<ProvisioningClient<Channel>> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(pki.ca())
        .domain_name("127.0.0.1")
        .identity(id);
    let channel = Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .timeout(Duration::from_secs(30))
        .connect()
        .await?;
    Ok(ProvisioningClient::new(channel))
}

fn request() -> PrerequisitesRequest {
    PrerequisitesRequest {
        kubernetes_version: "v1.35.0".into(),
        apt_proxy: String::new(),
        registry_mirror: String::new(),
    }
}

#[tokio::test]
async fn the_host_runs_it_a_node_certificate_is_refused() -> TestResult {
    install_crypto();
    let pki = TestPki::new()?;
    let host = HarnessHost::start(&pki).await?;
    let root = tempfile::tempdir()?;
    let token = pki.issue_token("n1")?;
    let config = node_config(
        &pki,
        "n1",
        host.enrol_addr,
        host.host_addr,
        root.path(),
        Some(token),
    );
    let started = agent::start(config).await?;
    let addr = started.node_addr()?;
    let task = tokio::spawn(async move {
        let _ = started.run(std::future::pending()).await;
    });

    let status = client(&pki, addr, pki.node_identity("n2")?)
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

    let mut host_client = client(&pki, addr, pki.host_identity()).await?;
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
    task.abort();
    Ok(())
}
