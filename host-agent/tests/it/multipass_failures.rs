//! Each failure class of the Multipass provider, reproduced by the stand-in
//! under `tests/fixtures` with Multipass's documented messages and exit
//! codes, maps to the `ProviderError` a caller acts on.

use crate::multipass_support;

use host_agent::provider::multipass::{MultipassConfig, MultipassProvider};
use host_agent::provider::{Provider, ProviderError, VmState};
use multipass_support::{Standin, spec};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_missing_client_is_not_installed() {
    let s = Standin::new("not-installed");
    let provider = MultipassProvider::new(MultipassConfig {
        program: s.dir.join("no-such-multipass"),
        ..s.config()
    });
    for result in [
        provider.list().await.map(drop),
        provider.launch(&spec("mgmt-cp")).await.map(drop),
        provider.version().await.map(drop),
    ] {
        match result {
            Err(ProviderError::NotInstalled { tool, hint, .. }) => {
                assert!(tool.ends_with("no-such-multipass"));
                assert!(hint.contains("install"), "{hint}");
            }
            other => panic!("expected NotInstalled, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_stopped_daemon_is_a_precondition_with_advice() {
    let s = Standin::new("daemon-down");
    s.control(json!({"fail": "daemon-down"}));
    let provider = s.provider();
    for result in [
        provider.list().await.map(drop),
        provider.info("mgmt-cp").await.map(drop),
        provider.launch(&spec("mgmt-cp")).await.map(drop),
        provider.stop("mgmt-cp").await.map(drop),
    ] {
        match result {
            Err(ProviderError::Precondition(advice)) => {
                assert!(advice.contains("multipassd"), "{advice}");
                assert!(
                    advice.contains("cannot connect to the multipass socket"),
                    "{advice}"
                );
            }
            other => panic!("expected Precondition, got {other:?}"),
        }
    }
    assert!(s.calls().iter().all(|c| c["exit"] == 3));
    // The preflight tells "installed, daemon down" apart without an error.
    let version = provider.version().await.unwrap();
    assert!(version.client.is_some());
    assert_eq!(version.daemon, None);
}

#[tokio::test]
async fn launching_an_existing_name_is_name_taken() {
    let s = Standin::new("name-taken");
    s.seed(json!({
        "mgmt-cp": {"state": "Running", "ipv4": ["192.168.252.10"]},
        "mgmt-w1": {"state": "Deleted", "ipv4": []},
    }));
    let provider = s.provider();
    for name in ["mgmt-cp", "mgmt-w1"] {
        match provider.launch(&spec(name)).await {
            Err(ProviderError::NameTaken(n)) => assert_eq!(n, name),
            other => panic!("expected NameTaken for {name}, got {other:?}"),
        }
    }
    assert_eq!(s.calls_of("launch")[0]["exit"], 2);
}

#[tokio::test]
async fn a_host_without_room_is_resources() {
    let s = Standin::new("no-resources");
    s.control(json!({"fail": "no-resources"}));
    match s.provider().launch(&spec("mgmt-cp")).await {
        Err(ProviderError::Resources { name, detail }) => {
            assert_eq!(name, "mgmt-cp");
            assert!(detail.contains("Cannot allocate memory"), "{detail}");
        }
        other => panic!("expected Resources, got {other:?}"),
    }
}

/// The common case: Multipass gives up waiting but the machine is up. The
/// provider carries on and returns it; enrolment decides.
#[tokio::test]
async fn a_timed_out_launch_whose_machine_runs_is_launched() {
    for (class, state) in [
        ("launch-timeout-but-running", VmState::Running),
        ("launch-init-timeout-but-running", VmState::Running),
        ("launch-timeout-starting", VmState::Starting),
    ] {
        let s = Standin::new(class);
        s.control(json!({"fail": class}));
        let vm = s
            .provider()
            .launch(&spec("mgmt-cp"))
            .await
            .unwrap_or_else(|e| panic!("{class}: {e}"));
        assert_eq!(vm.name, "mgmt-cp");
        assert_eq!(vm.state, state, "{class}");
        let launch = &s.calls_of("launch")[0];
        assert_ne!(
            launch["exit"], 0,
            "{class}: the stand-in did report a failure"
        );
        assert_eq!(
            s.argvs().last().unwrap(),
            &["info", "--format", "json", "mgmt-cp"]
        );
    }
}

#[tokio::test]
async fn a_timed_out_launch_without_a_machine_is_timeout() {
    let s = Standin::new("timeout-absent");
    s.control(json!({"fail": "launch-timeout-absent"}));
    match s.provider().launch(&spec("mgmt-cp")).await {
        Err(ProviderError::Timeout { name, detail }) => {
            assert_eq!(name, "mgmt-cp");
            assert!(
                detail.contains("Timed out waiting for instance launch"),
                "{detail}"
            );
            assert!(detail.contains("exit 5"), "{detail}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_that_hangs_is_killed_at_the_deadline() {
    let s = Standin::new("hang");
    s.control(json!({"sleep": 30, "sleep_ops": ["list"]}));
    let provider = MultipassProvider::new(MultipassConfig {
        query_timeout: Duration::from_millis(700),
        ..s.config()
    });
    match provider.list().await {
        Err(ProviderError::Failed {
            operation, detail, ..
        }) => {
            assert_eq!(operation, "list");
            assert!(detail.contains("timed out"), "{detail}");
        }
        other => panic!("expected a failed list, got {other:?}"),
    }
    assert!(
        s.calls().is_empty(),
        "the killed client never finished its call"
    );
}

#[tokio::test]
async fn unknown_machines_are_not_found() {
    let s = Standin::new("not-found");
    let provider = s.provider();
    for result in [
        provider.start("ghost").await,
        provider.stop("ghost").await,
        provider.delete("ghost", true).await,
    ] {
        assert!(
            matches!(result, Err(ProviderError::NotFound(ref n)) if n == "ghost"),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn bad_names_and_missing_user_data_fail_before_any_call() {
    let s = Standin::new("refused");
    let provider = s.provider();
    assert!(matches!(
        provider.delete("--all", true).await,
        Err(ProviderError::Failed { .. })
    ));
    assert!(matches!(
        provider.launch(&spec("-x")).await,
        Err(ProviderError::Failed { .. })
    ));
    let mut node = spec("mgmt-cp");
    node.user_data = None;
    assert!(matches!(
        provider.launch(&node).await,
        Err(ProviderError::Precondition(_))
    ));
    assert!(s.calls().is_empty());
}

#[tokio::test]
async fn other_failures_keep_multipass_own_words() {
    let s = Standin::new("other");
    let provider = s.provider();
    let mut node = spec("mgmt-cp");
    node.memory_bytes = 64 << 20; // below Multipass's 128M minimum
    match provider.launch(&node).await {
        Err(ProviderError::Failed {
            operation, detail, ..
        }) => {
            assert_eq!(operation, "launch");
            assert!(
                detail.contains("Invalid memory size value supplied: 64M"),
                "{detail}"
            );
            assert!(detail.contains("exit 1"), "{detail}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}
