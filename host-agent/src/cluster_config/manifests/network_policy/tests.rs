//! A small evaluator of the subset of Cilium policy semantics the policy
//! uses (endpointSelector with matchLabels/matchExpressions, to/from
//! Endpoints, Entities, CIDR, toPorts, enableDefaultDeny), run over the
//! rendered objects: every documented flow is allowed, flows outside the
//! table are denied. It panics on any rule key it does not model, so a
//! new kind of rule cannot pass unevaluated.

use super::*;
use std::net::Ipv4Addr;

/// What sends or receives in a flow under test.
#[derive(Debug, Clone)]
enum Ep {
    Pod {
        namespace: String,
        labels: Vec<(String, String)>,
    },
    Entity(&'static str),
    Ip(Ipv4Addr),
}

fn pod(namespace: &str, labels: &[(&str, &str)]) -> Ep {
    Ep::Pod {
        namespace: namespace.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn label_of<'a>(ep: &'a Ep, key: &str) -> Option<&'a str> {
    let key = key.strip_prefix("k8s:").unwrap_or(key);
    match ep {
        Ep::Pod { namespace, .. } if key == "io.kubernetes.pod.namespace" => Some(namespace),
        Ep::Pod { labels, .. } => labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str()),
        _ => None,
    }
}

fn selects(selector: &Value, ep: &Ep) -> bool {
    if !matches!(ep, Ep::Pod { .. }) {
        return false;
    }
    for key in selector.as_object().unwrap().keys() {
        assert!(
            ["matchLabels", "matchExpressions"].contains(&key.as_str()),
            "{key}"
        );
    }
    let labels_ok = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| label_of(ep, k) == v.as_str());
    let exprs_ok = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let value = label_of(ep, e["key"].as_str().unwrap());
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap())
                .collect();
            match e["operator"].as_str().unwrap() {
                "In" => value.is_some_and(|v| values.contains(&v)),
                "NotIn" => value.is_none_or(|v| !values.contains(&v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                op => panic!("operator {op}"),
            }
        });
    labels_ok && exprs_ok
}

fn in_cidr(ip: Ipv4Addr, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').unwrap();
    let net: Ipv4Addr = net.parse().unwrap();
    let len: u32 = len.parse().unwrap();
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn peer_matches(rule: &Value, dir: &str, peer: &Ep) -> bool {
    let (eps, ents, cidr, cidr_set) = match dir {
        "egress" => ("toEndpoints", "toEntities", "toCIDR", "toCIDRSet"),
        _ => ("fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet"),
    };
    for key in rule.as_object().unwrap().keys() {
        assert!(
            [eps, ents, cidr, cidr_set, "toPorts"].contains(&key.as_str()),
            "unmodelled rule key {key}"
        );
    }
    let list = |k: &str| rule[k].as_array().cloned().unwrap_or_default();
    list(eps).iter().any(|s| selects(s, peer))
        || list(ents).iter().any(|e| {
            let e = e.as_str().unwrap();
            e == "all"
                || matches!(peer, Ep::Entity(p) if *p == e)
                || (e == "world" && matches!(peer, Ep::Ip(_)))
        })
        || list(cidr)
            .iter()
            .any(|c| matches!(peer, Ep::Ip(ip) if in_cidr(*ip, c.as_str().unwrap())))
        || list(cidr_set)
            .iter()
            .any(|c| matches!(peer, Ep::Ip(ip) if in_cidr(*ip, c["cidr"].as_str().unwrap())))
}

fn ports_match(rule: &Value, port: u16, proto: Protocol) -> bool {
    let Some(rules) = rule["toPorts"].as_array() else {
        return true;
    };
    rules.iter().any(|r| {
        r["ports"].as_array().unwrap().iter().any(|p| {
            let p_port = p["port"].as_str().unwrap();
            let p_proto = p["protocol"].as_str().unwrap_or("ANY");
            (p_port == "0" || p_port == port.to_string())
                && (p_proto == "ANY" || p_proto == proto.as_str())
        })
    })
}

/// Whether `ep`'s side of the flow lets it through in `dir`.
fn side_allows(
    policies: &[Value],
    ep: &Ep,
    dir: &str,
    peer: &Ep,
    port: u16,
    proto: Protocol,
) -> bool {
    let selecting: Vec<&Value> = policies
        .iter()
        .filter(|p| selects(&p["spec"]["endpointSelector"], ep))
        .collect();
    let rules: Vec<&Value> = selecting
        .iter()
        .flat_map(|p| p["spec"][dir].as_array().into_iter().flatten())
        .collect();
    let default_deny = selecting.iter().any(|p| {
        let explicit = &p["spec"]["enableDefaultDeny"][dir];
        explicit == &json!(true)
            || (explicit.is_null() && p["spec"][dir].as_array().is_some_and(|r| !r.is_empty()))
    });
    !default_deny
        || rules
            .iter()
            .any(|r| peer_matches(r, dir, peer) && ports_match(r, port, proto))
}

fn allowed(policies: &[Value], from: &Ep, to: &Ep, port: u16, proto: Protocol) -> bool {
    side_allows(policies, from, "egress", to, port, proto)
        && side_allows(policies, to, "ingress", from, port, proto)
}

fn resolved() -> Resolved {
    topology::default_topology().resolve(None).unwrap()
}

fn ep_of(resolved: &Resolved, peer: Peer) -> Ep {
    match peer {
        Peer::Workload => pod("shop", &[("app", "web")]),
        Peer::Pods { namespace, labels } => pod(namespace, labels),
        Peer::Entity(e) => Ep::Entity(e),
        Peer::Mgmt(s) => Ep::Ip(mgmt_service_address(resolved, s).unwrap()),
    }
}

/// The rendered objects, read back from the YAML file as applied.
fn rendered(resolved: &Resolved, cluster: &str) -> Vec<Value> {
    let text = file(resolved, cluster).unwrap();
    let value: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        value,
        policy(resolved, cluster).unwrap(),
        "the file is the object"
    );
    vec![value]
}

#[test]
fn every_documented_flow_is_allowed_on_every_cluster() {
    let resolved = resolved();
    for cluster in ["mgmt", "app1", "app2"] {
        let policies = rendered(&resolved, cluster);
        for flow in FLOWS {
            let (from, to) = (ep_of(&resolved, flow.from), ep_of(&resolved, flow.to));
            let ports: Vec<Port> = if flow.ports.is_empty() {
                vec![Port(8080, Protocol::Tcp), Port(9999, Protocol::Udp)]
            } else {
                flow.ports.to_vec()
            };
            for Port(port, proto) in ports {
                let port = if port == 0 { 8080 } else { port };
                assert!(
                    allowed(&policies, &from, &to, port, proto),
                    "{cluster}: {} ({from:?} -> {to:?} {port}/{proto:?}) is denied",
                    flow.what
                );
            }
        }
    }
}

#[test]
fn flows_outside_the_table_are_denied() {
    let resolved = resolved();
    let mgmt = |s| Ep::Ip(mgmt_service_address(&resolved, s).unwrap());
    let web = pod("shop", &[("app", "web")]);
    let denied: Vec<(&str, Ep, Ep, u16, Protocol)> = vec![
        (
            "workload to the internet",
            web.clone(),
            Ep::Ip(Ipv4Addr::new(1, 1, 1, 1)),
            443,
            Protocol::Tcp,
        ),
        (
            "workload to another namespace's workload",
            web.clone(),
            pod("bank", &[("app", "db")]),
            5432,
            Protocol::Tcp,
        ),
        (
            "workload to its own namespace (allowed only by the team's own policy)",
            web.clone(),
            pod("shop", &[("app", "db")]),
            5432,
            Protocol::Tcp,
        ),
        (
            "workload to mgmt's Vault",
            web.clone(),
            mgmt(MgmtService::Vault),
            8200,
            Protocol::Tcp,
        ),
        (
            "workload to mgmt's Loki",
            web.clone(),
            mgmt(MgmtService::Logs),
            3100,
            Protocol::Tcp,
        ),
        (
            "workload to mgmt's Thanos Receive",
            web.clone(),
            mgmt(MgmtService::Metrics),
            19291,
            Protocol::Tcp,
        ),
        (
            "workload to kube-dns on another port",
            web.clone(),
            pod("kube-system", &[("k8s-app", "kube-dns")]),
            80,
            Protocol::Tcp,
        ),
        (
            "workload to another kube-system pod",
            web.clone(),
            pod("kube-system", &[("k8s-app", "metrics-server")]),
            53,
            Protocol::Udp,
        ),
        (
            "workload to the API server on another port",
            web.clone(),
            Ep::Entity("kube-apiserver"),
            22,
            Protocol::Tcp,
        ),
        (
            "the outside world straight to a workload",
            Ep::Ip(Ipv4Addr::new(203, 0, 113, 9)),
            web.clone(),
            8080,
            Protocol::Tcp,
        ),
        (
            "a monitoring pod that is not Prometheus to a workload",
            pod("monitoring", &[("app.kubernetes.io/name", "grafana")]),
            web.clone(),
            8080,
            Protocol::Tcp,
        ),
        (
            "Prometheus to a workload over UDP",
            pod(
                "monitoring",
                &[("app.kubernetes.io/managed-by", "prometheus-operator")],
            ),
            web.clone(),
            8080,
            Protocol::Udp,
        ),
    ];
    for cluster in ["mgmt", "app1", "app2"] {
        let policies = rendered(&resolved, cluster);
        for (what, from, to, port, proto) in &denied {
            assert!(
                !allowed(&policies, from, to, *port, *proto),
                "{cluster}: {what} is allowed"
            );
        }
    }
}

#[test]
fn platform_namespaces_and_cilium_endpoints_are_not_selected() {
    let resolved = resolved();
    let policies = rendered(&resolved, "app1");
    let selector = &policies[0]["spec"]["endpointSelector"];
    for ns in platform_namespaces(&resolved, "app1") {
        assert!(!selects(selector, &pod(ns, &[])), "{ns} is selected");
    }
    for ns in [
        "monitoring",
        "falco",
        "cert-manager",
        "external-secrets",
        "kube-system",
    ] {
        assert!(platform_namespaces(&resolved, "app1").contains(&ns), "{ns}");
    }
    assert!(platform_namespaces(&resolved, "mgmt").contains(&"vault"));
    assert!(!selects(selector, &Ep::Entity("health")));
    assert!(selects(selector, &pod("default", &[])));
}

#[test]
fn the_docs_carry_the_flow_table() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/policy-runtime.md"
    ))
    .unwrap();
    assert!(
        doc.contains(&markdown_table()),
        "docs/policy-runtime.md: paste\n{}",
        markdown_table()
    );
}
