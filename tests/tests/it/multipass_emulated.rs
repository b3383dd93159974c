//! The Mac path on Linux: `hostctl up --provider multipass` with the real
//! Multipass provider, against the Multipass emulator (a stand-in, see
//! `tests/multipass-emulator/README.md`) whose machines boot from the exact
//! user-data hostctl renders, on an emulated vmnet (192.168.252.0/24, a real
//! DHCP server) while the topology declares 192.168.64.0/24. Needs root,
//! dnsmasq and the node-dist agent (`make test` builds it).

use serde_json::Value;
use std::time::Duration;
use tests::bootstrap::{NetnsApi, calls, helm_standin, write_kubeadm_wrapper, write_manifests};
use tests::emulated::{self, Emulated};
use tests::kube_api::{State, node};

const SIX: [(&str, &str, u8); 6] = [
    ("mgmt-cp", "mgmt", 10),
    ("mgmt-worker-0", "mgmt", 11),
    ("app1-cp", "app1", 20),
    ("app1-worker-0", "app1", 21),
    ("app2-cp", "app2", 30),
    ("app2-worker-0", "app2", 31),
];

fn mac_address(host: u8) -> String {
    format!("192.168.252.{host}")
}

/// The stand-ins `up` runs the Kubernetes steps with: kubeadm on the nodes,
/// helm on the host, local manifests, a temporary kubeconfig.
fn stand_ins(env: &mut Emulated) {
    let tools = env.home().join("stand-ins");
    let helm = tools.join("helm");
    std::fs::create_dir_all(&helm).unwrap();
    let wrapper = write_kubeadm_wrapper(&tools);
    write_manifests(&tools.join("manifests"));
    let path = |p: &std::path::Path| p.display().to_string();
    env.vars.extend([
        ("HOSTCTL_KUBEADM".to_owned(), path(&wrapper)),
        ("HOSTCTL_HELM".to_owned(), path(&helm_standin())),
        ("HELM_STANDIN_DIR".to_owned(), path(&helm)),
        (
            "HOSTCTL_MANIFESTS_DIR".to_owned(),
            path(&tools.join("manifests")),
        ),
        ("KUBECONFIG".to_owned(), path(&tools.join("kubeconfig"))),
    ]);
}

/// The stand-in API server of each cluster, inside its control plane's
/// namespace (the emulator names it `mpemu-<machine>`), its nodes Ready.
fn api_servers(env: &Emulated) -> Vec<NetnsApi> {
    ["mgmt", "app1", "app2"]
        .into_iter()
        .map(|cluster| {
            let nodes: Vec<_> = SIX.iter().filter(|n| n.1 == cluster).collect();
            let cp = nodes[0];
            let names = [
                "127.0.0.1".to_owned(),
                "kubernetes".to_owned(),
                mac_address(cp.2),
            ];
            let state = State {
                nodes: nodes.iter().map(|n| node(n.0, true)).collect(),
                objects: tests::bootstrap::ready_addon_objects(tests::bootstrap::role_of(cluster)),
                ..State::default()
            };
            NetnsApi::start_when_ready(
                env.home(),
                &format!("mpemu-{}", cp.0),
                cluster,
                &names,
                state,
            )
        })
        .collect()
}

fn status_node(env: &Emulated, name: &str) -> Value {
    let text = env.hostctl_ok(&["status", "-o", "json"]);
    let json = text
        .split_once("stdout:\n")
        .and_then(|(_, rest)| rest.split_once("\nstderr:"))
        .map_or("", |(json, _)| json);
    let v: Value = serde_json::from_str(json).unwrap_or_default();
    v["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["nodes"].as_array().cloned().unwrap_or_default())
        .find(|n| n["name"] == name)
        .unwrap_or_default()
}

#[test]
fn six_nodes_come_up_on_the_emulated_mac_network_and_a_restarted_node_keeps_its_address() {
    if !emulated::can_run("six_nodes_come_up_on_the_emulated_mac_network") {
        return;
    }
    let mut env = Emulated::new(&[]);
    stand_ins(&mut env);
    // mgmt's Vault: a real OpenBao server on the host's loopback.
    let Some((_vault, var)) = tests::bootstrap::vault_for_up(env.home(), "emulated vault") else {
        return;
    };
    env.vars.push(var);
    let apis = api_servers(&env);
    let out = env.hostctl_ok(&[
        "up",
        "--provider",
        "multipass",
        "--report-interval",
        "1",
        "--timeout",
        "300",
        "--ready-timeout",
        "60",
    ]);

    // Every node holds its topology address (on the provider's subnet, not
    // the declared one) beside a DHCP lease from .2 upward.
    for (name, _, host) in SIX {
        let addrs = env.addresses(name);
        assert!(
            addrs.contains(&mac_address(host)),
            "{name}: {addrs:?}\n{out}"
        );
        let lease = addrs.first().cloned().unwrap_or_default();
        assert!(
            lease.starts_with("192.168.252.") && lease != mac_address(host),
            "{name}: the lease comes first: {addrs:?}"
        );
    }
    // The host certificate covers the address the nodes dial.
    let host_crt = std::fs::read_to_string(env.home().join("pki/agent/host.crt")).unwrap();
    let sans = certs::ip_sans_of(&certs::cert_der_from_pem(&host_crt).unwrap()).unwrap();
    assert!(
        sans.contains(&"192.168.252.1".parse().unwrap()),
        "host SANs {sans:?}"
    );
    // Kubernetes: init on the control planes, join on the workers, each
    // cluster's API answering with its nodes Ready.
    for (name, cluster, _) in SIX {
        let root = env.state.join("machines").join(name).join("root");
        let kubeadm: Vec<String> = calls(&root.join("kubeadm-standin/calls.jsonl"))
            .iter()
            .filter_map(|c| c["argv"][0].as_str().map(str::to_owned))
            .collect();
        let want = if name.ends_with("-cp") {
            "init"
        } else {
            "join"
        };
        assert_eq!(kubeadm, [want], "{name}: {}\n{out}", root.display());
        assert!(
            out.contains(&format!("cluster {cluster}: API ok")),
            "{cluster}: {out}"
        );
    }

    // A node stopped and started through the emulator gets another lease,
    // keeps its topology address and identity, and reports again.
    let node = "app1-worker-0";
    let before = env.addresses(node);
    let serial = std::fs::read(env.home().join("pki/agent/nodes/app1-worker-0.crt")).unwrap();
    assert!(env.multipass(&["stop", node]).status.success());
    assert!(env.multipass(&["start", node]).status.success());
    let after = env.addresses(node);
    assert!(after.contains(&mac_address(21)), "{after:?}");
    assert_ne!(
        before.first(),
        after.first(),
        "a new lease: {before:?} → {after:?}"
    );
    let fresh = tests::poll::until(
        "app1-worker-0 reporting again after its restart",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || {
            let n = status_node(&env, node);
            (n["connected"] == true && n["stale"] == false).then_some(n)
        },
        || format!("{:#}", status_node(&env, node)),
    );
    assert_eq!(fresh["addresses"][0], mac_address(21), "{fresh:#}");
    assert_eq!(
        std::fs::read(env.home().join("pki/agent/nodes/app1-worker-0.crt")).unwrap(),
        serial,
        "the node kept its identity (no new enrolment)"
    );
    let logs = env.hostctl_ok(&["logs", node, "--tail", "5"]);
    assert!(logs.lines().count() > 2, "{logs}");
    drop(apis);
}

#[test]
fn a_lease_on_a_topology_address_stops_doctor_and_up_before_any_launch() {
    if !emulated::can_run("a_lease_on_a_topology_address_stops_doctor_and_up") {
        return;
    }
    let mut env = Emulated::new(&["app1-cp"]);
    let leases = env.home().join("planted-leases");
    std::fs::write(
        &leases,
        "{\n\tname=stray\n\tip_address=192.168.252.20\n\thw_address=1,52:54:0:aa:bb:cc\n\tidentifier=1,52:54:0:aa:bb:cc\n\tlease=0x7fffffff\n}\n",
    )
    .unwrap();
    env.vars.retain(|(k, _)| k != "HOSTCTL_DHCP_LEASES");
    env.vars.push((
        "HOSTCTL_DHCP_LEASES".to_owned(),
        leases.display().to_string(),
    ));
    for args in [
        &["doctor", "--provider", "multipass"][..],
        &["up", "--provider", "multipass"],
    ] {
        let out = env.hostctl(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(5), "{args:?}: {text}");
        assert!(text.contains("app1-cp"), "names the node: {text}");
        assert!(text.contains("192.168.252.20"), "names the address: {text}");
        assert!(text.contains("stray"), "names the holder: {text}");
        assert!(text.contains("remove its entry"), "says the fix: {text}");
    }
    let list = env.multipass(&["list", "--format", "json"]);
    let v: Value = serde_json::from_slice(&list.stdout).unwrap_or_default();
    assert_eq!(
        v["list"].as_array().map(Vec::len),
        Some(0),
        "a machine was launched: {v}"
    );
}

/// VM mode: one node boots the test image (real cloud-init, netplan,
/// networkd, systemd) from the exact Multipass user-data, with no
/// network-config, on the emulated DHCP network: it holds its topology
/// address beside its lease, and its agent binds there, enrols over mTLS
/// and reports from inside the VM. (Its prerequisites then fail: the VM has
/// no package mirror here; the QEMU suite covers that path.)
#[test]
fn vm_mode_a_node_boots_the_multipass_user_data_and_reports_from_inside() {
    if !tests::qemu::can_run_vms("vm_mode_a_node_boots_the_multipass_user_data")
        || !emulated::can_run("vm_mode_a_node_boots_the_multipass_user_data")
    {
        return;
    }
    let image = tests::qemu::test_image();
    let mut env = Emulated::new(&["app1-cp"]);
    env.vars.extend([
        ("MULTIPASS_EMULATOR_MODE".to_owned(), "vm".to_owned()),
        (
            "MULTIPASS_EMULATOR_IMAGE".to_owned(),
            image.display().to_string(),
        ),
    ]);
    let out = env.hostctl(&[
        "up",
        "--provider",
        "multipass",
        "--nodes-only",
        "--report-interval",
        "2",
        "--timeout",
        "900",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let state = std::fs::read_to_string(env.home().join("up-state.json")).unwrap_or_default();
    let done = |step: &str| {
        let v: Value = serde_json::from_str(&state).unwrap_or_default();
        v["steps"][step]["status"] == "done"
    };
    assert!(
        done("launch/app1-cp") && done("enrol/app1-cp"),
        "launch and enrol must be done:\n{text}\n{state}\n{}",
        env.logs()
    );
    let addrs = env.addresses("app1-cp");
    assert!(addrs.contains(&mac_address(20)), "{addrs:?}");
    assert!(
        addrs.first().is_some_and(|a| a != &mac_address(20)),
        "lease first: {addrs:?}"
    );
    let reports = env.history("app1-cp");
    let system = reports
        .last()
        .and_then(|r| r.report.clone())
        .and_then(|r| r.system)
        .expect("a report with system figures");
    let host_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_ne!(
        system.boot_id,
        host_boot.trim(),
        "the report came from this machine"
    );
}
