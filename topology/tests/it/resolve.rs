//! Address resolution: host numbers follow the provider's subnet, literal
//! addresses do not, and the rendered result is itself a valid topology.

use ipnet::Ipv4Net;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use topology::{Address, Addressing, IpRange, default_topology, parse};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn host_numbers_follow_the_provider_subnet() {
    let resolved = default_topology()
        .resolve(Some(net("192.168.252.0/24")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resolved.subnet(), net("192.168.252.0/24"));
    let ips: Vec<(&str, Ipv4Addr)> = resolved.node_ips().collect();
    assert_eq!(
        ips,
        [
            ("mgmt-cp", ip("192.168.252.10")),
            ("mgmt-worker-0", ip("192.168.252.11")),
            ("app1-cp", ip("192.168.252.20")),
            ("app1-worker-0", ip("192.168.252.21")),
            ("app2-cp", ip("192.168.252.30")),
            ("app2-worker-0", ip("192.168.252.31")),
        ]
    );
    assert_eq!(resolved.node_ip("app1-cp"), Some(ip("192.168.252.20")));
    assert_eq!(resolved.node_ip("nope"), None);
    let pool = resolved.pool("app2").unwrap();
    assert_eq!(
        pool,
        IpRange {
            start: ip("192.168.252.221"),
            end: ip("192.168.252.230")
        }
    );
    assert_eq!(pool.to_string(), "192.168.252.221-192.168.252.230");
    assert_eq!(
        resolved.pool("mgmt").unwrap().to_string(),
        "192.168.252.200-192.168.252.210"
    );
    assert_eq!(resolved.host_agent_address(), ip("192.168.252.1"));
    assert_eq!(
        resolved.host_agent_endpoint(),
        SocketAddrV4::new(ip("192.168.252.1"), 7443)
    );
    // Without `listen`, the host agent binds the address nodes dial (it
    // follows the provider's subnet), not every interface.
    assert_eq!(
        resolved.host_agent_listen(),
        "192.168.252.1:7443".parse::<SocketAddr>().unwrap()
    );
    assert!(resolved.host_agent_listen_is_default());
}

#[test]
fn without_a_provider_subnet_the_declared_one_is_used() {
    let resolved = default_topology().resolve(None).unwrap();
    assert_eq!(resolved.node_ip("mgmt-cp"), Some(ip("192.168.64.10")));
    assert_eq!(
        resolved.pool("app1").unwrap().to_string(),
        "192.168.64.211-192.168.64.220"
    );
}

#[test]
fn a_provider_subnet_with_host_bits_is_truncated() {
    // A provider may report the host's own address with its prefix.
    let resolved = default_topology()
        .resolve(Some(net("192.168.252.1/24")))
        .unwrap();
    assert_eq!(resolved.node_ip("app2-cp"), Some(ip("192.168.252.30")));
}

#[test]
fn a_literal_address_outside_the_provider_subnet_is_an_error() {
    let src = topology::default_yaml().replace("    address: 20\n", "    address: 192.168.64.20\n");
    let loaded = parse(&src, "topology.yaml").unwrap_or_else(|e| panic!("{e}"));
    let err = loaded.resolve(Some(net("192.168.252.0/24"))).unwrap_err();
    let errors: Vec<_> = err.errors().collect();
    assert_eq!(errors.len(), 1, "{err}");
    let d = errors[0];
    assert_eq!(d.path, "nodes[2].address");
    assert!(d.message.contains("node app1-cp"), "{d}");
    assert!(
        d.message.contains("192.168.252.0/24") && d.message.contains("192.168.64.0/24"),
        "{d}"
    );
    assert!(d.fix.contains("`20`"), "{d}");
    let line = src
        .lines()
        .position(|l| l == "    address: 192.168.64.20")
        .unwrap()
        + 1;
    assert_eq!((d.file.as_str(), d.line), ("topology.yaml", Some(line)));
    // The same file resolves fine where the literal address lives.
    assert!(loaded.resolve(Some(net("192.168.64.0/24"))).is_ok());
}

#[test]
fn a_host_number_that_does_not_fit_the_provider_subnet_is_an_error() {
    let err = default_topology()
        .resolve(Some(net("192.168.252.0/25")))
        .unwrap_err();
    let paths: Vec<&str> = err.errors().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "clusters[0].metallbPool.start",
            "clusters[0].metallbPool.end",
            "clusters[1].metallbPool.start",
            "clusters[1].metallbPool.end",
            "clusters[2].metallbPool.start",
            "clusters[2].metallbPool.end",
        ],
        "{err}"
    );
    assert!(
        err.errors()
            .all(|d| d.message.contains("does not fit in 192.168.252.0/25")),
        "{err}"
    );
}

#[test]
fn fixed_addressing_refuses_a_different_provider_subnet() {
    let mut t = default_topology();
    t.network.addressing = Addressing::Fixed;
    let err = t.resolve(Some(net("192.168.252.0/24"))).unwrap_err();
    let d = err.errors().next().unwrap();
    assert_eq!(d.path, "network.addressing");
    assert!(
        d.message.contains("192.168.64.0/24") && d.message.contains("192.168.252.0/24"),
        "{d}"
    );
    assert_eq!(err.errors().count(), 1, "{err}");
    assert!(t.resolve(Some(net("192.168.64.0/24"))).is_ok());
}

#[test]
fn resolution_rechecks_collisions_in_the_real_subnet() {
    // .10 as a host number and 192.168.252.10 as a literal collide only once
    // host numbers are placed in the provider's subnet.
    let mut t = default_topology();
    t.network.cidr = net("192.168.252.0/24");
    if let Some(n) = t.nodes.get_mut(1) {
        n.address = Address::Ip(ip("192.168.252.10"));
    }
    let err = t.resolve(Some(net("192.168.252.0/24"))).unwrap_err();
    assert!(
        err.errors()
            .any(|d| d.path == "nodes[1].address"
                && d.message.contains("already used by node mgmt-cp")),
        "{err}"
    );
}

#[test]
fn the_rendered_topology_loads_back_and_resolves_to_itself() {
    let resolved = default_topology()
        .resolve(Some(net("192.168.252.0/24")))
        .unwrap();
    let yaml = resolved.to_yaml();
    let loaded = parse(&yaml, "topology.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let t = &loaded.topology;
    assert_eq!(t.network.cidr, net("192.168.252.0/24"));
    assert_eq!(t.network.addressing, Addressing::Fixed);
    assert_eq!(t.clusters.len(), 3);
    assert_eq!(t.nodes.len(), 6);
    assert_eq!(
        t.node("app2-worker-0").map(|n| n.address),
        Some(Address::Ip(ip("192.168.252.31")))
    );
    assert_eq!(t.host_agent.address, Address::Ip(ip("192.168.252.1")));
    assert_eq!(t, resolved.topology());
    let again = loaded.resolve(Some(net("192.168.252.0/24"))).unwrap();
    assert_eq!(again.topology(), resolved.topology());
    // Resolved serializes as its topology document.
    let json = serde_json::to_value(&resolved).unwrap();
    assert_eq!(json["nodes"][0]["address"], "192.168.252.10");
}
