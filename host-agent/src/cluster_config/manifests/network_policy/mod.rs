//! Default-deny networking (SPEC §6, §8 L3: "deny by default, allow
//! explicitly") as one CiliumClusterwideNetworkPolicy per cluster, applied
//! with the base manifests right after Cilium (whose agent registers the
//! CRD before `helm --wait` returns) and before any add-on or workload.
//!
//! It selects every pod outside the platform's namespaces ([`platform_namespaces`])
//! and turns on Cilium's default deny in both directions for them; the only
//! allows are the rows of [`FLOWS`] with a workload on one side. The platform's
//! own namespaces stay unselected: their charts' traffic (scrapers of host
//! ports, webhooks called by the API server, Vault's peers, the mesh's
//! etcd) differs per chart version, and a wrong rule there breaks the
//! bootstrap itself; PSA, and Kyverno on app clusters, police them instead.
//! `docs/policy-runtime.md` carries the same table.

use crate::addons::catalogue::{Addon, Available};
use crate::cluster_config::cluster::{API_SERVER_PORT, MgmtService, mgmt_service_address};
use crate::cluster_config::error::{K8sError, Result};
use crate::cluster_config::versions::CILIUM_NAMESPACE;
use crate::cluster_config::yaml;
use serde_json::{Value, json};
use topology::Resolved;

#[cfg(test)]
mod tests;

/// The policy's name (cluster-scoped).
pub const POLICY_NAME: &str = "hostctl-default-deny-workloads";
/// Cilium's label for a pod's namespace in selectors.
pub const NAMESPACE_LABEL: &str = "k8s:io.kubernetes.pod.namespace";

/// A transport protocol in a port rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    /// Every protocol Cilium knows (no port restriction for it).
    Any,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Any => "ANY",
        }
    }
}

/// One side of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Any pod outside the platform namespaces.
    Workload,
    /// Pods of a platform namespace carrying these labels.
    Pods {
        namespace: &'static str,
        labels: &'static [(&'static str, &'static str)],
    },
    /// A Cilium reserved entity (`kube-apiserver`, `ingress`, `host`, …).
    Entity(&'static str),
    /// One of mgmt's fixed LoadBalancer addresses.
    Mgmt(MgmtService),
}

/// A port a flow uses; port 0 means every port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16, pub Protocol);

/// One allowed flow: the documented table, and the rules rendered from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// What needs it.
    pub what: &'static str,
    pub from: Peer,
    pub to: Peer,
    /// Empty: every port.
    pub ports: &'static [Port],
}

impl Flow {
    /// Whether a rule is rendered for it (a workload on one side);
    /// otherwise it is allowed because neither side is selected.
    pub fn rendered(&self) -> bool {
        self.from == Peer::Workload || self.to == Peer::Workload
    }
}

const KUBE_DNS: Peer = Peer::Pods {
    namespace: "kube-system",
    labels: &[("k8s-app", "kube-dns")],
};
const DNS_PORTS: &[Port] = &[Port(53, Protocol::Udp), Port(53, Protocol::Tcp)];

/// Every flow the platform allows, workloads' and its own.
pub const FLOWS: &[Flow] = &[
    Flow {
        what: "name resolution",
        from: Peer::Workload,
        to: KUBE_DNS,
        ports: DNS_PORTS,
    },
    Flow {
        what: "the Kubernetes API (in-cluster clients)",
        from: Peer::Workload,
        to: Peer::Entity("kube-apiserver"),
        ports: &[Port(API_SERVER_PORT, Protocol::Tcp)],
    },
    Flow {
        what: "the Gateway (Cilium's Envoy) to its backends",
        from: Peer::Entity("ingress"),
        to: Peer::Workload,
        ports: &[],
    },
    Flow {
        what: "kubelet probes from the pod's own node",
        from: Peer::Entity("host"),
        to: Peer::Workload,
        ports: &[],
    },
    Flow {
        what: "Cluster Mesh and tunnelled node traffic: other nodes, peer clusters' nodes",
        from: Peer::Entity("remote-node"),
        to: Peer::Workload,
        ports: &[],
    },
    Flow {
        what: "Prometheus scraping (the server on mgmt, the agent on app clusters)",
        from: Peer::Pods {
            namespace: crate::addons::observability::NAMESPACE,
            labels: &[("app.kubernetes.io/managed-by", "prometheus-operator")],
        },
        to: Peer::Workload,
        ports: &[Port(0, Protocol::Tcp)],
    },
    Flow {
        what: "metrics shipping: the Prometheus agent to mgmt's Thanos Receive",
        from: Peer::Pods {
            namespace: crate::addons::observability::NAMESPACE,
            labels: &[("app.kubernetes.io/managed-by", "prometheus-operator")],
        },
        to: Peer::Mgmt(MgmtService::Metrics),
        ports: &[Port(
            crate::addons::observability::REMOTE_WRITE_PORT,
            Protocol::Tcp,
        )],
    },
    Flow {
        what: "logs shipping (Falco's alerts too): Alloy to mgmt's Loki",
        from: Peer::Pods {
            namespace: crate::addons::observability::NAMESPACE,
            labels: &[("app.kubernetes.io/name", "alloy")],
        },
        to: Peer::Mgmt(MgmtService::Logs),
        ports: &[Port(crate::addons::observability::LOKI_PORT, Protocol::Tcp)],
    },
    Flow {
        what: "Cluster Mesh: the agents' peer clustermesh-apiserver (etcd)",
        from: Peer::Entity("host"),
        to: Peer::Entity("remote-node"),
        ports: &[Port(2379, Protocol::Tcp)],
    },
    Flow {
        what: "the app clusters' issuers and secret stores to mgmt's Vault",
        from: Peer::Pods {
            namespace: "cert-manager",
            labels: &[],
        },
        to: Peer::Mgmt(MgmtService::Vault),
        ports: &[Port(8200, Protocol::Tcp)],
    },
];

/// The namespaces whose pods the policy leaves alone on a cluster of
/// `resolved` called `cluster`: Kubernetes' and Cilium's own, the base
/// manifests' and every catalogue add-on's that can run there.
pub fn platform_namespaces(resolved: &Resolved, cluster: &str) -> Vec<&'static str> {
    let mut out = vec![
        "kube-system",
        "kube-public",
        "kube-node-lease",
        CILIUM_NAMESPACE,
        super::metallb::NAMESPACE,
        super::local_path::NAMESPACE,
    ];
    let role = resolved.topology().cluster(cluster).map(|c| c.role);
    let mgmt = resolved.topology().mgmt_cluster().is_some();
    if let Some(role) = role {
        // Whether or not a backup target exists yet: a namespace left
        // alone with nothing in it costs nothing.
        let available = Available::new(mgmt, true);
        out.extend(Addon::for_role(role, available).map(|a| a.namespace));
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn selector(peer: Peer) -> Value {
    match peer {
        Peer::Pods { namespace, labels } => {
            let mut m = serde_json::Map::new();
            m.insert(NAMESPACE_LABEL.into(), json!(namespace));
            for (k, v) in labels {
                m.insert(format!("k8s:{k}"), json!(v));
            }
            json!({"matchLabels": m})
        }
        _ => json!({}),
    }
}

fn ports(flow: &Flow) -> Option<Value> {
    if flow.ports.is_empty() {
        return None;
    }
    let ports: Vec<Value> = flow
        .ports
        .iter()
        .map(|Port(port, proto)| json!({"port": port.to_string(), "protocol": proto.as_str()}))
        .collect();
    Some(json!([{"ports": ports}]))
}

/// The rule of `flow` seen from the workload's side; `None` when no
/// workload is in it.
fn rule(resolved: &Resolved, flow: &Flow, egress: bool) -> Result<Option<Value>> {
    let peer = if egress { flow.to } else { flow.from };
    let (peers, entities, cidrs) = if egress {
        ("toEndpoints", "toEntities", "toCIDR")
    } else {
        ("fromEndpoints", "fromEntities", "fromCIDR")
    };
    let mut rule = serde_json::Map::new();
    match peer {
        Peer::Workload => return Ok(None),
        Peer::Pods { .. } => {
            rule.insert(peers.into(), json!([selector(peer)]));
        }
        Peer::Entity(e) => {
            rule.insert(entities.into(), json!([e]));
        }
        Peer::Mgmt(service) => {
            let ip = mgmt_service_address(resolved, service).map_err(K8sError::NetworkPolicy)?;
            rule.insert(cidrs.into(), json!([format!("{ip}/32")]));
        }
    }
    if let Some(p) = ports(flow) {
        rule.insert("toPorts".into(), p);
    }
    Ok(Some(Value::Object(rule)))
}

/// The policy object of `cluster`.
pub fn policy(resolved: &Resolved, cluster: &str) -> Result<Value> {
    let platform = platform_namespaces(resolved, cluster);
    let mut ingress = Vec::new();
    let mut egress = Vec::new();
    for flow in FLOWS.iter().filter(|f| f.rendered()) {
        if flow.from == Peer::Workload {
            egress.extend(rule(resolved, flow, true)?);
        }
        if flow.to == Peer::Workload {
            ingress.extend(rule(resolved, flow, false)?);
        }
    }
    Ok(json!({
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": POLICY_NAME,
                     "labels": {"app.kubernetes.io/managed-by": "hostctl"}},
        "spec": {
            "description": format!("Default deny for workloads of cluster {cluster} (SPEC §8 L3); allows: docs/policy-runtime.md"),
            // Exists keeps Cilium's reserved endpoints (health, ingress),
            // which have no namespace, out of the selection.
            "endpointSelector": {"matchExpressions": [
                {"key": NAMESPACE_LABEL, "operator": "Exists"},
                {"key": NAMESPACE_LABEL, "operator": "NotIn", "values": platform},
            ]},
            "enableDefaultDeny": {"ingress": true, "egress": true},
            "ingress": ingress,
            "egress": egress,
        },
    }))
}

/// The base manifest file of `cluster`.
pub fn file(resolved: &Resolved, cluster: &str) -> Result<String> {
    let doc = yaml::document(
        "CiliumClusterwideNetworkPolicy",
        &policy(resolved, cluster)?,
    )?;
    Ok(yaml::file(
        &format!(
            "Default-deny networking for workloads of cluster {cluster} (SPEC §8 L3).\n\
             A dropped flow shows in `hubble observe --verdict DROPPED`."
        ),
        &[doc],
    ))
}

/// The flow table as Markdown (docs/policy-runtime.md holds this text; a
/// test keeps the two equal).
pub fn markdown_table() -> String {
    let peer = |p: Peer| match p {
        Peer::Workload => "workload pod".to_owned(),
        Peer::Pods {
            namespace,
            labels: [],
        } => format!("pods in `{namespace}`"),
        Peer::Pods { namespace, labels } => {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("`{namespace}` pods `{}`", l.join(","))
        }
        Peer::Entity(e) => format!("entity `{e}`"),
        Peer::Mgmt(s) => format!("mgmt's {} address", s.as_str()),
    };
    let mut out =
        String::from("| flow | from | to | ports | rule |\n| --- | --- | --- | --- | --- |\n");
    for f in FLOWS {
        let ports = if f.ports.is_empty() {
            "all".to_owned()
        } else {
            f.ports
                .iter()
                .map(|Port(p, proto)| {
                    if *p == 0 {
                        format!("all/{}", proto.as_str())
                    } else {
                        format!("{p}/{}", proto.as_str())
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let how = if f.rendered() {
            "rendered allow"
        } else {
            "unselected (platform)"
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            f.what,
            peer(f.from),
            peer(f.to),
            ports,
            how
        ));
    }
    out
}
