//! The Multipass provider's happy paths against the stand-in under
//! `tests/fixtures`: the command lines it runs (from the stand-in's call
//! log), what reaches Multipass, what it reads back, the subnet it derives,
//! and the bound on concurrent boots.

use crate::multipass_support;

use host_agent::provider::multipass::{
    MultipassConfig, MultipassProvider, StableNetwork, address_on,
};
use host_agent::provider::{Provider, VmState};
use multipass_support::{Standin, spec};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

#[tokio::test]
async fn launch_runs_the_documented_command_line_and_delivers_user_data() {
    let s = Standin::new("launch");
    let provider = s.provider();
    let node = spec("mgmt-cp");

    let vm = provider.launch(&node).await.unwrap();

    assert_eq!(vm.name, "mgmt-cp");
    assert_eq!(vm.state, VmState::Running);
    assert_eq!(
        vm.addresses,
        vec!["192.168.252.2".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    let launches = s.calls_of("launch");
    assert_eq!(launches.len(), 1);
    let argv: Vec<&str> = launches[0]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let file = argv[12];
    assert_eq!(
        argv,
        [
            "launch",
            "--name",
            "mgmt-cp",
            "--cpus",
            "2",
            "--memory",
            "4G",
            "--disk",
            "40G",
            "--timeout",
            "120",
            "--cloud-init",
            file,
            "24.04",
        ]
    );
    assert_eq!(launches[0]["user_data"], node.user_data.clone().unwrap());
    assert_eq!(
        launches[0]["user_data_mode"], "0o600",
        "user-data carries secrets"
    );
    assert!(file.starts_with(s.dir.join("scratch").to_str().unwrap()));
    assert!(
        !std::path::Path::new(file).exists(),
        "user-data is removed after the launch"
    );
    // The result is read back, not assumed.
    assert_eq!(
        s.argvs().last().unwrap(),
        &["info", "--format", "json", "mgmt-cp"]
    );
}

#[tokio::test]
async fn image_sizes_and_the_stable_nic_follow_the_config() {
    let s = Standin::new("launch-config");
    let provider = MultipassProvider::new(MultipassConfig {
        image: "22.04".into(),
        stable_network: Some(StableNetwork {
            bridge: "en0".into(),
        }),
        ..s.config()
    });
    let mut node = spec("app1-w1");
    node.memory_bytes = 1536 << 20;
    node.disk_bytes = 20 << 30;

    provider.launch(&node).await.unwrap();

    let argv = &s.argvs()[0];
    let mac = MultipassProvider::stable_mac("app1-w1");
    assert_eq!(provider.extra_nic_mac("app1-w1"), Some(mac));
    assert_eq!(&argv[5..9], ["--memory", "1536M", "--disk", "20G"]);
    let network = argv
        .iter()
        .position(|a| a == "--network")
        .expect("--network");
    assert_eq!(argv[network + 1], format!("name=en0,mode=manual,mac={mac}"));
    assert_eq!(argv.last().unwrap(), "22.04");
    // Without the stable NIC there is no MAC to match and no --network.
    assert_eq!(s.provider().extra_nic_mac("app1-w1"), None);
}

#[tokio::test]
async fn lifecycle_commands_and_their_effect() {
    let s = Standin::new("lifecycle");
    let provider = s.provider();
    provider.launch(&spec("mgmt-cp")).await.unwrap();

    provider.stop("mgmt-cp").await.unwrap();
    let stopped = provider.info("mgmt-cp").await.unwrap().unwrap();
    assert_eq!(stopped.state, VmState::Stopped);
    assert!(stopped.addresses.is_empty());

    provider.start("mgmt-cp").await.unwrap();
    assert_eq!(
        provider.info("mgmt-cp").await.unwrap().unwrap().state,
        VmState::Running
    );

    provider.delete("mgmt-cp", false).await.unwrap();
    assert_eq!(provider.list().await.unwrap()[0].state, VmState::Deleted);
    provider.delete("mgmt-cp", true).await.unwrap();
    assert!(provider.list().await.unwrap().is_empty());
    assert_eq!(
        provider.info("mgmt-cp").await.unwrap(),
        None,
        "gone means None, not an error"
    );

    let commands: Vec<Vec<String>> = s.argvs().into_iter().skip(2).collect();
    let expected: Vec<Vec<&str>> = vec![
        vec!["stop", "mgmt-cp"],
        vec!["info", "--format", "json", "mgmt-cp"],
        vec!["start", "mgmt-cp"],
        vec!["info", "--format", "json", "mgmt-cp"],
        vec!["delete", "mgmt-cp"],
        vec!["list", "--format", "json"],
        vec!["delete", "--purge", "mgmt-cp"],
        vec!["list", "--format", "json"],
        vec!["info", "--format", "json", "mgmt-cp"],
    ];
    assert_eq!(commands, expected);
}

#[tokio::test]
async fn list_and_info_read_the_1_17_shape_too() {
    let s = Standin::new("format-117");
    s.control(json!({"format": "1.17"}));
    let provider = s.provider();
    provider.launch(&spec("mgmt-cp")).await.unwrap();
    provider.launch(&spec("mgmt-w1")).await.unwrap();

    let vms = provider.list().await.unwrap();
    let names: Vec<_> = vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["mgmt-cp", "mgmt-w1"]);
    assert!(
        vms.iter()
            .all(|v| v.state == VmState::Running && v.addresses.len() == 1)
    );
    assert_eq!(
        provider.info("mgmt-w1").await.unwrap().unwrap().state,
        VmState::Running
    );
}

#[tokio::test]
async fn list_reports_only_managed_machines_when_told_which() {
    let s = Standin::new("managed");
    s.seed(json!({
        "mgmt-cp": {"state": "Running", "ipv4": ["192.168.252.10"]},
        "users-own-vm": {"state": "Running", "ipv4": ["192.168.252.99"]},
    }));
    let provider = MultipassProvider::new(MultipassConfig {
        managed: Some(BTreeSet::from(["mgmt-cp".to_owned(), "mgmt-w1".to_owned()])),
        ..s.config()
    });
    let names: Vec<_> = provider
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["mgmt-cp"]);
    assert_eq!(
        s.provider().list().await.unwrap().len(),
        2,
        "unfiltered by default"
    );
}

#[tokio::test]
async fn subnet_is_read_from_the_machines_and_addresses_resolve_against_it() {
    let s = Standin::new("subnet");
    let provider = s.provider();
    // No machine yet: the daemon's release decides (the stand-in says
    // `1.16.3+mac`, which forces vmnet-shared to 192.168.252.0/24).
    assert_eq!(
        provider.subnet().await.unwrap(),
        Some("192.168.252.0/24".parse().unwrap()),
        "no machine yet: the release's subnet"
    );

    s.seed(json!({
        "mgmt-cp": {"state": "Running", "ipv4": ["192.168.252.10", "10.100.0.1"]},
        "mgmt-w1": {"state": "Running", "ipv4": ["192.168.252.11", "192.168.64.20"]},
        "app1-cp": {"state": "Starting", "ipv4": ["192.168.252.12"]},
        "old": {"state": "Stopped", "ipv4": []},
    }));
    let subnet = provider.subnet().await.unwrap().unwrap();
    assert_eq!(subnet, "192.168.252.0/24".parse().unwrap());

    let worker = provider.info("mgmt-w1").await.unwrap().unwrap();
    assert_eq!(
        address_on(&worker, &subnet),
        Some("192.168.252.11".parse().unwrap())
    );
    let cp = provider.info("mgmt-cp").await.unwrap().unwrap();
    assert_eq!(address_on(&cp, &"192.168.64.0/24".parse().unwrap()), None);
}

#[tokio::test]
async fn version_answers_from_client_and_daemon() {
    let s = Standin::new("version");
    let version = s.provider().version().await.unwrap();
    assert_eq!(version.client.as_deref(), Some("1.16.3+mac"));
    assert_eq!(version.daemon.as_deref(), Some("1.16.3+mac"));
}

/// Six launches at once with a bound of three: the stand-in's recorded
/// intervals (its own clock, not the test's wall time) never overlap more
/// than three deep.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_launches_are_bounded() {
    let s = Standin::new("bounded");
    s.control(json!({"sleep": 0.8, "sleep_ops": ["launch"]}));
    let provider = Arc::new(MultipassProvider::new(MultipassConfig {
        max_parallel_boots: 3,
        ..s.config()
    }));
    let tasks: Vec<_> = (1..=6)
        .map(|i| {
            let provider = Arc::clone(&provider);
            tokio::spawn(async move { provider.launch(&spec(&format!("app2-w{i}"))).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let launches = s.calls_of("launch");
    assert_eq!(launches.len(), 6);
    let mut edges: Vec<(f64, i32)> = launches
        .iter()
        .flat_map(|c| {
            [
                (c["start"].as_f64().unwrap(), 1),
                (c["end"].as_f64().unwrap(), -1),
            ]
        })
        .collect();
    // Ends sort before starts at the same instant: touching is not overlapping.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut depth, mut deepest) = (0, 0);
    for (_, step) in edges {
        depth += step;
        deepest = deepest.max(depth);
    }
    assert!(
        deepest <= 3,
        "{deepest} launches overlapped with a bound of 3"
    );
    assert!(
        deepest >= 2,
        "launches did not run concurrently at all ({deepest})"
    );
    assert_eq!(provider.list().await.unwrap().len(), 6);
}
