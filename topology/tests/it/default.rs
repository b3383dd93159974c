//! The built-in default is the seed specification, exactly, and survives a
//! round trip through the file `hostctl init` writes.

use ipnet::Ipv4Net;
use topology::{
    Address, Addressing, ByteSize, ClusterRole, NodeRole, default_topology, default_yaml, parse,
};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

#[test]
fn default_yaml_parses_back_to_the_default() {
    let loaded = parse(&default_yaml(), "topology.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.topology, default_topology());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn default_validates_clean_without_a_file() {
    let diagnostics = default_topology().validate();
    assert!(diagnostics.is_empty(), "{diagnostics}");
}

#[test]
fn default_network_and_host_agent() {
    let t = default_topology();
    assert_eq!(t.network.cidr, net("192.168.64.0/24"));
    assert_eq!(t.network.addressing, Addressing::Provider);
    assert_eq!(t.host_agent.address, Address::Host(1));
    assert_eq!(t.host_agent.port, 7443);
    assert_eq!(t.host_agent.listen, None);
}

#[test]
fn default_clusters_are_the_spec_network_table() {
    let t = default_topology();
    let expected = [
        (
            "mgmt",
            ClusterRole::Mgmt,
            "10.100.0.0/16",
            "10.96.0.0/16",
            200,
            210,
        ),
        (
            "app1",
            ClusterRole::App,
            "10.101.0.0/16",
            "10.97.0.0/16",
            211,
            220,
        ),
        (
            "app2",
            ClusterRole::App,
            "10.102.0.0/16",
            "10.98.0.0/16",
            221,
            230,
        ),
    ];
    assert_eq!(t.clusters.len(), expected.len());
    for (c, (name, role, pod, svc, start, end)) in t.clusters.iter().zip(expected) {
        assert_eq!(c.name, name);
        assert_eq!(c.role, role, "{name}");
        assert_eq!(c.kubernetes_version.to_string(), "v1.35.0", "{name}");
        assert_eq!(c.pod_cidr, net(pod), "{name}");
        assert_eq!(c.service_cidr, net(svc), "{name}");
        assert_eq!(c.metallb_pool.start, Address::Host(start), "{name}");
        assert_eq!(c.metallb_pool.end, Address::Host(end), "{name}");
    }
}

#[test]
fn default_nodes_are_the_spec_node_table() {
    let t = default_topology();
    let expected = [
        ("mgmt-cp", "mgmt", NodeRole::ControlPlane, 10, 4, 40),
        ("mgmt-worker-0", "mgmt", NodeRole::Worker, 11, 6, 60),
        ("app1-cp", "app1", NodeRole::ControlPlane, 20, 3, 30),
        ("app1-worker-0", "app1", NodeRole::Worker, 21, 4, 40),
        ("app2-cp", "app2", NodeRole::ControlPlane, 30, 3, 30),
        ("app2-worker-0", "app2", NodeRole::Worker, 31, 4, 40),
    ];
    assert_eq!(t.nodes.len(), expected.len());
    for (n, (name, cluster, role, host, mem, disk)) in t.nodes.iter().zip(expected) {
        assert_eq!(n.name, name);
        assert_eq!(n.cluster, cluster, "{name}");
        assert_eq!(n.role, role, "{name}");
        assert_eq!(n.address, Address::Host(host), "{name}");
        assert_eq!(n.cpus, 2, "{name}");
        assert_eq!(n.memory, ByteSize::gib(mem), "{name}");
        assert_eq!(n.disk, ByteSize::gib(disk), "{name}");
    }
    // SPEC §5 totals: 24 GB, 12 vCPU, 240 GB.
    assert_eq!(t.total_memory(), ByteSize::gib(24).bytes());
    assert_eq!(t.nodes.iter().map(|n| n.cpus).sum::<u32>(), 12);
    assert_eq!(
        t.nodes.iter().map(|n| n.disk.bytes()).sum::<u64>(),
        ByteSize::gib(240).bytes()
    );
}

#[test]
fn accessors_find_clusters_and_their_nodes() {
    let t = default_topology();
    assert_eq!(
        t.control_plane("app1").map(|n| n.name.as_str()),
        Some("app1-cp")
    );
    let workers: Vec<&str> = t.workers("mgmt").map(|n| n.name.as_str()).collect();
    assert_eq!(workers, ["mgmt-worker-0"]);
    assert_eq!(t.nodes_of("app2").count(), 2);
    assert_eq!(
        t.node("app2-cp").map(|n| n.address),
        Some(Address::Host(30))
    );
    assert_eq!(t.cluster("app1").map(|c| c.role), Some(ClusterRole::App));
    assert_eq!(t.mgmt_cluster().map(|c| c.name.as_str()), Some("mgmt"));
    assert!(t.cluster("nope").is_none() && t.node("nope").is_none());
    assert!(t.control_plane("nope").is_none());
}

#[test]
fn default_serializes_to_json_with_the_header() {
    let json = serde_json::to_value(default_topology()).unwrap();
    assert_eq!(json["apiVersion"], "hostctl.dev/v1alpha1");
    assert_eq!(json["kind"], "Topology");
    assert_eq!(json["nodes"][0]["memory"], "4GiB");
    assert_eq!(json["nodes"][0]["address"], 10);
    assert_eq!(json["nodes"][0]["role"], "control-plane");
    assert_eq!(json["clusters"][1]["podCidr"], "10.101.0.0/16");
    assert_eq!(
        json["hostAgent"]["listen"],
        serde_json::Value::Null,
        "default: the host address"
    );
}
