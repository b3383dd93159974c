//! Names, references and roles: what makes the clusters and nodes well defined.

use super::{cluster_path, node_path};
use crate::model::{ClusterRole, Node, NodeRole, Topology};
use crate::report::Report;
use crate::suggest::closest;
use crate::version::TESTED_MINOR;
use std::collections::HashMap;

/// Cilium refuses Cluster Mesh names longer than this (`cluster.name`).
const CILIUM_CLUSTER_NAME_MAX: usize = 32;

pub(super) fn check(t: &Topology, report: &mut Report<'_>) {
    if t.clusters.is_empty() {
        report.error(
            "clusters",
            "there are no clusters",
            "add at least one cluster (see `hostctl init`)",
        );
    }
    if t.nodes.is_empty() {
        report.error(
            "nodes",
            "there are no nodes",
            "add a control-plane node for every cluster",
        );
    }
    cluster_names(t, report);
    node_names(t, report);
    node_clusters(t, report);
    control_planes(t, report);
    roles(t, report);
    versions(t, report);
}

fn cluster_names(t: &Topology, report: &mut Report<'_>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, c) in t.clusters.iter().enumerate() {
        let path = cluster_path(i, "name");
        if let Some(problem) = dns_label_problem(&c.name) {
            report.error(
                &path,
                format!(
                    "cluster name `{}` is not a DNS-1123 label: {problem}",
                    c.name
                ),
                rename_fix(&c.name),
            );
        } else if c.name.len() > CILIUM_CLUSTER_NAME_MAX {
            report.error(
                &path,
                format!("cluster name `{}` is {} characters; Cilium Cluster Mesh allows at most {CILIUM_CLUSTER_NAME_MAX}", c.name, c.name.len()),
                "choose a shorter name",
            );
        }
        if let Some(first) = seen.insert(&c.name, i) {
            report.error(
                &path,
                format!(
                    "cluster `{}` is already defined (clusters[{first}])",
                    c.name
                ),
                "give each cluster its own name",
            );
            seen.insert(&c.name, first);
        }
    }
}

fn node_names(t: &Topology, report: &mut Report<'_>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, n) in t.nodes.iter().enumerate() {
        let path = node_path(i, "name");
        if let Some(problem) = dns_label_problem(&n.name) {
            report.error(
                &path,
                format!("node name `{}` is not a DNS-1123 label: {problem}", n.name),
                rename_fix(&n.name),
            );
        } else if !n.name.starts_with(|c: char| c.is_ascii_lowercase()) {
            report.error(
                &path,
                format!("node name `{}` must start with a letter (it is also the Multipass instance name)", n.name),
                format!("rename it, e.g. `node-{}`", n.name),
            );
        }
        if let Some(first) = seen.insert(&n.name, i) {
            report.error(
                &path,
                format!("node `{}` is already defined (nodes[{first}]); node names are VM names and must be unique across clusters", n.name),
                "give each node its own name",
            );
            seen.insert(&n.name, first);
        }
    }
}

fn node_clusters(t: &Topology, report: &mut Report<'_>) {
    let names: Vec<&str> = t.clusters.iter().map(|c| c.name.as_str()).collect();
    for (i, n) in t.nodes.iter().enumerate() {
        if names.contains(&n.cluster.as_str()) {
            continue;
        }
        let fix = match closest(&n.cluster, &names) {
            Some(c) => format!("did you mean `{c}`?"),
            None if names.is_empty() => "define the cluster under `clusters`".to_owned(),
            None => format!("use one of: {}", names.join(", ")),
        };
        report.error(
            &node_path(i, "cluster"),
            format!(
                "node `{}` names cluster `{}`, which is not defined",
                n.name, n.cluster
            ),
            fix,
        );
    }
}

fn control_planes(t: &Topology, report: &mut Report<'_>) {
    for (i, c) in t.clusters.iter().enumerate() {
        let members: Vec<(usize, &Node)> = t
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.cluster == c.name)
            .collect();
        let mut control_planes = members
            .iter()
            .filter(|(_, n)| n.role == NodeRole::ControlPlane);
        let first = control_planes.next();
        match (first, members.first()) {
            (_, None) => report.error(
                &format!("clusters[{i}]"),
                format!("cluster `{}` has no nodes", c.name),
                format!("add a node with `cluster: {}` and `role: control-plane`, or remove the cluster", c.name),
            ),
            (None, Some((_, some))) => report.error(
                &format!("clusters[{i}]"),
                format!("cluster `{}` has no control-plane node", c.name),
                format!("set `role: control-plane` on one of its nodes, e.g. {}", some.name),
            ),
            (Some((k, cp)), Some(_)) => {
                for (j, _) in control_planes {
                    report.error(
                        &node_path(*j, "role"),
                        format!(
                            "cluster `{}` already has control-plane node {} (nodes[{k}]); exactly one is supported",
                            c.name, cp.name
                        ),
                        "make this node a worker (HA control planes are not supported)",
                    );
                }
            }
        }
    }
}

fn roles(t: &Topology, report: &mut Report<'_>) {
    let mut mgmt = t
        .clusters
        .iter()
        .enumerate()
        .filter(|(_, c)| c.role == ClusterRole::Mgmt);
    match mgmt.next() {
        None if !t.clusters.is_empty() => report.warning(
            "clusters",
            "no cluster has role mgmt, so platform services (Vault, observability, backup, ArgoCD) have nowhere to run",
            "set `role: mgmt` on one cluster",
        ),
        None => {}
        Some((_, first)) => {
            for (j, c) in mgmt {
                report.error(
                    &cluster_path(j, "role"),
                    format!("cluster `{}` is a second mgmt cluster (`{}` already is)", c.name, first.name),
                    "set `role: app`; only one cluster hosts the platform services",
                );
            }
        }
    }
}

fn versions(t: &Topology, report: &mut Report<'_>) {
    for (i, c) in t.clusters.iter().enumerate() {
        let v = c.kubernetes_version;
        if v.minor != TESTED_MINOR {
            report.warning(
                &cluster_path(i, "kubernetesVersion"),
                format!("{v} is not the tested Kubernetes version v1.{TESTED_MINOR}; kubeadm config and packages may differ"),
                format!("use v1.{TESTED_MINOR}.x unless you mean to try another version"),
            );
        }
    }
}

/// Why `s` is not a DNS-1123 label (RFC 1123: lowercase letters, digits and
/// `-`, starting and ending alphanumeric, at most 63), if it is not one.
pub(crate) fn dns_label_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("it is empty")
    } else if s.len() > 63 {
        Some("it is longer than 63 characters")
    } else if s.chars().any(|c| c.is_ascii_uppercase()) {
        Some("it contains uppercase letters")
    } else if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("only lowercase letters, digits and `-` are allowed")
    } else if s.starts_with('-') || s.ends_with('-') {
        Some("it must start and end with a letter or digit")
    } else {
        None
    }
}

/// A "rename it to …" fix with the nearest valid label.
fn rename_fix(s: &str) -> String {
    let label: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() {
        "use lowercase letters, digits and `-`, e.g. `app1`".to_owned()
    } else {
        format!("rename it, e.g. `{label}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label_problem("app1-cp"), None);
        assert!(dns_label_problem("App1").is_some());
        assert!(dns_label_problem("app_1").is_some());
        assert!(dns_label_problem("-app").is_some());
        assert!(dns_label_problem("").is_some());
        assert!(dns_label_problem(&"a".repeat(64)).is_some());
        assert_eq!(rename_fix("App_1"), "rename it, e.g. `app-1`");
    }
}
