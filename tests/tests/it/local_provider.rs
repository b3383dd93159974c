//! The local provider on its own, with a stand-in agent (`sleep`): network
//! namespace, veth, bridge, root directory, supervisor restarts, stop/start,
//! delete. Fast (a few seconds) and independent of the daemon.

use host_agent::provider::local::{LocalOptions, LocalProvider};
use host_agent::provider::{LaunchSpec, NodeNetwork, Provider, VmState};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;
use tests::bins::Binaries;
use tests::poll;

const SUBNET: &str = "10.251.5.0/24";

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn launches_supervises_stops_and_deletes_a_namespace_node() {
    if !tests::can_run_netns("local_provider") {
        return;
    }
    let home = tempfile::tempdir().expect("temp home");
    let agent = home.path().join("fake-agent");
    std::fs::write(&agent, "#!/bin/sh\nexec sleep 600\n").expect("write fake agent");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let provider = LocalProvider::new(
        home.path(),
        LocalOptions {
            node_agent: Some(agent),
            supervisor_exe: Some(Binaries::locate().hostctl),
        },
    );
    let names = provider.names().clone();
    let guard = Cleanup(provider.names().bridge(), home.path().join("local/n1"));

    let host = Ipv4Addr::new(10, 251, 5, 1);
    provider
        .prepare(&NodeNetwork {
            subnet: SUBNET.parse().expect("subnet"),
            host_address: host,
        })
        .await
        .expect("prepare");
    assert!(ip(&["-o", "-4", "addr", "show", "dev", &names.bridge()]).contains("10.251.5.1/24"));

    let spec = LaunchSpec {
        name: "n1".into(),
        cpus: 1,
        memory_bytes: 1 << 30,
        disk_bytes: 1 << 30,
        address: Ipv4Addr::new(10, 251, 5, 20),
        prefix_len: 24,
        gateway: host,
        node_agent_config: "node: n1\n".into(),
        user_data: None,
    };
    let info = provider.launch(&spec).await.expect("launch");
    assert_eq!(info.state, VmState::Running);
    assert!(matches!(
        provider.launch(&spec).await,
        Err(host_agent::provider::ProviderError::NameTaken(_))
    ));

    // The namespace has the node's address and a default route via the host.
    let ns = names.netns("n1");
    let addr = ip(&["-n", &ns, "-o", "-4", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains("10.251.5.20/24"), "{addr}");
    let route = ip(&["-n", &ns, "route", "show", "default"]);
    assert!(route.contains("via 10.251.5.1"), "{route}");

    // The config is in the node's root, private.
    let root = provider.agent_layout("n1").root;
    let config = root.join("etc/hostctl/node-agent.yaml");
    let mode = std::fs::metadata(&config)
        .expect("config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Killing the agent: the supervisor starts a new one.
    let agent_pidfile = home.path().join("local/n1/node-agent.pid");
    let first = poll::until(
        "the first agent pid",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || read_pid(&agent_pidfile),
        String::new,
    );
    Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .expect("kill");
    poll::until(
        "a restarted agent",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || read_pid(&agent_pidfile).filter(|p| *p != first),
        || std::fs::read_to_string(root.join("var/log/hostctl/supervisor.log")).unwrap_or_default(),
    );

    provider.stop("n1").await.expect("stop");
    let stopped = provider.info("n1").await.expect("info").expect("exists");
    assert_eq!(stopped.state, VmState::Stopped);
    provider.start("n1").await.expect("start");
    let list = provider.list().await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, VmState::Running);

    // A launch cut off before the agent's configuration was written (an
    // `up` killed at that moment) leaves a node that could never start:
    // it does not count as existing, and the next launch replaces it.
    provider.stop("n1").await.expect("stop");
    std::fs::remove_file(&config).expect("remove the config");
    assert!(
        provider.info("n1").await.expect("info").is_none(),
        "a half-made node is reported"
    );
    let relaunched = provider
        .launch(&spec)
        .await
        .expect("relaunch a half-made node");
    assert_eq!(relaunched.state, VmState::Running);
    assert!(config.exists(), "the relaunch wrote the config");

    provider.delete("n1", true).await.expect("delete");
    assert!(provider.info("n1").await.expect("info").is_none());
    assert!(!ip(&["netns", "list"]).contains(&ns));
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(names.bridge())
            .exists()
    );
    assert!(!home.path().join("local/n1").exists());
    provider.teardown(true).await.expect("teardown");
    drop(guard);
}

/// Removes the supervisor, bridge and namespaces of a failed run.
struct Cleanup(String, std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(&self.1.join("supervisor.pid")) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        for ns in ip(&["netns", "list"]).lines() {
            if let Some(name) = ns.split_whitespace().next()
                && name.starts_with(&format!("{}-", self.0))
            {
                for pid in ip(&["netns", "pids", name]).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
                ip(&["netns", "del", name]);
            }
        }
        ip(&["link", "del", &self.0]);
    }
}
