//! `Kubeadm.Reset`, refused file paths and who may call the service, over
//! mutual TLS with the kubeadm stand-in.

use crate::kubeadm_support;
use test_support::node_harness as harness;

use harness::TestResult;
use kubeadm_support::{collect, dead_endpoints, outcome, start};
use proto::v1::{ErrorCode, KubeadmInitRequest, KubeadmResetRequest, PlacedFile};

fn init_request(paths: &[&str]) -> KubeadmInitRequest {
    KubeadmInitRequest {
        config_yaml: "kind: InitConfiguration\n".into(),
        files: paths
            .iter()
            .map(|p| PlacedFile {
                path: (*p).into(),
                contents: b"x".to_vec(),
                mode: 0o644,
            })
            .collect(),
    }
}

#[tokio::test]
async fn reset_runs_kubeadm_reset_and_removes_what_was_placed() -> TestResult {
    let node = start(true, dead_endpoints()?).await?;
    let placed = [
        "pki/ca.crt",
        "pki/ca.key",
        "admission/admission-config.yaml",
    ];
    let init = collect(node.host().await?.init(init_request(&placed)).await).await?;
    assert_eq!(outcome(&init), Ok(false));
    assert!(node.path("etc/kubernetes/admin.conf").exists());

    let events = collect(node.host().await?.reset(KubeadmResetRequest {}).await).await?;
    assert_eq!(outcome(&events), Ok(false), "{events:#?}");
    assert_eq!(
        node.calls()?.last().cloned(),
        Some(vec!["reset".to_owned(), "-f".into()])
    );
    for gone in [
        "etc/kubernetes/admin.conf",
        "etc/kubernetes/kubelet.conf",
        "etc/kubernetes/manifests/kube-apiserver.yaml",
        "etc/kubernetes/pki",
        "etc/kubernetes/admission",
        "etc/hostctl/kubeadm.yaml",
    ] {
        assert!(!node.path(gone).exists(), "{gone} survived the reset");
    }
    assert!(events.iter().any(|e| e.phase == "kubeadm/cleanup"));
    // A fresh init is possible again.
    let again = collect(node.host().await?.init(init_request(&placed)).await).await?;
    assert_eq!(outcome(&again), Ok(false));
    Ok(())
}

#[tokio::test]
async fn a_failed_reset_keeps_the_files_and_says_why() -> TestResult {
    let node = start(true, dead_endpoints()?).await?;
    let init = collect(node.host().await?.init(init_request(&["pki/ca.crt"])).await).await?;
    assert_eq!(outcome(&init), Ok(false));
    node.control(r#"{"reset": {"fail": "reset"}}"#)?;
    let events = collect(node.host().await?.reset(KubeadmResetRequest {}).await).await?;
    let err = outcome(&events).err().ok_or("reset must fail")?;
    assert_eq!(err.code, ErrorCode::CommandFailed as i32);
    assert!(
        err.message.contains("kubeadm reset failed (cleanup-node)"),
        "{}",
        err.message
    );
    assert!(node.path("etc/kubernetes/pki/ca.crt").exists());
    Ok(())
}

#[tokio::test]
async fn paths_outside_pki_and_admission_are_refused_before_any_write() -> TestResult {
    let node = start(true, dead_endpoints()?).await?;
    for bad in [
        "../hostctl/node-agent.yaml",
        "pki/../../../evil",
        "/etc/passwd",
        "manifests/kube-apiserver.yaml",
        "admin.conf",
    ] {
        let req = init_request(&["pki/ca.crt", bad]);
        let events = collect(node.host().await?.init(req).await).await?;
        let err = outcome(&events).err().ok_or("must be refused")?;
        assert_eq!(err.code, ErrorCode::InvalidArgument as i32, "{bad}");
        assert!(err.message.contains(bad), "{}", err.message);
    }
    assert!(
        !node.path("etc/kubernetes/pki/ca.crt").exists(),
        "nothing may be written"
    );
    assert!(!node.path("evil").exists());
    assert!(node.calls()?.is_empty(), "kubeadm must not run");
    Ok(())
}

#[tokio::test]
async fn only_the_host_and_admins_may_call() -> TestResult {
    let node = start(true, dead_endpoints()?).await?;
    let other = node.pki.node_identity("n2")?;
    let status = node
        .client(Some(other))
        .await?
        .reset(KubeadmResetRequest {})
        .await
        .err()
        .ok_or("another node's certificate must be refused")?;
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(status.message().contains("n2"), "{}", status.message());
    let no_cert = match node.client(None).await {
        Ok(mut c) => c.reset(KubeadmResetRequest {}).await.is_err(),
        Err(_) => true,
    };
    assert!(no_cert, "a caller without a certificate must be refused");
    let admin = node.client(Some(node.pki.admin_identity())).await?;
    let events = collect(admin.clone().reset(KubeadmResetRequest {}).await).await?;
    assert_eq!(outcome(&events), Ok(false));
    assert_eq!(node.commands()?, ["reset"]);
    Ok(())
}
