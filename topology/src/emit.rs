//! Writing a topology back as the YAML a person edits.
//!
//! A generic serializer would produce a valid file, but `hostctl init` hands
//! the result to a user who has to understand it, so this writes the fields in
//! the documented order, pools as one-line `{ start, end }` mappings, and a
//! comment where a value needs explaining. Any string that YAML could read as
//! something else (a number, a boolean, a null) is quoted, so what is written
//! always reads back to the same topology.

use crate::address::Address;
use crate::model::{API_VERSION, Addressing, ClusterRole, KIND, NodeRole, Topology};
use std::fmt::Write;

/// Renders `t` as a topology file, prefixed by `header` (comment lines).
pub(crate) fn to_yaml(t: &Topology, header: &str) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are discarded on purpose.
    let _ = write_document(&mut out, t, header);
    out
}

fn write_document(out: &mut String, t: &Topology, header: &str) -> std::fmt::Result {
    for line in header.lines() {
        writeln!(out, "# {line}")?;
    }
    writeln!(out, "apiVersion: {API_VERSION}")?;
    writeln!(out, "kind: {KIND}")?;
    writeln!(out)?;
    writeln!(
        out,
        "# The network the VMs live on. With `addressing: provider`, addresses written as"
    )?;
    writeln!(
        out,
        "# host numbers (10 means .10) are placed in the subnet the provider really hands"
    )?;
    writeln!(
        out,
        "# out (Multipass >= 1.16.2 on macOS uses 192.168.252.0/24), so the file keeps"
    )?;
    writeln!(
        out,
        "# working when it moves. `addressing: fixed` uses `cidr` as written."
    )?;
    writeln!(out, "network:")?;
    writeln!(out, "  cidr: {}", t.network.cidr)?;
    let addressing = match t.network.addressing {
        Addressing::Provider => "provider",
        Addressing::Fixed => "fixed",
    };
    writeln!(out, "  addressing: {addressing}")?;
    writeln!(out)?;
    writeln!(
        out,
        "# The host agent: nodes dial `address:port` (the host's side of the VM bridge);"
    )?;
    writeln!(out, "# it binds `listen` on the host.")?;
    writeln!(out, "hostAgent:")?;
    writeln!(out, "  address: {}", address(t.host_agent.address))?;
    writeln!(out, "  port: {}", t.host_agent.port)?;
    match t.host_agent.listen {
        Some(listen) => writeln!(out, "  listen: {}", scalar(&listen.to_string()))?,
        None => writeln!(
            out,
            "  # listen: 0.0.0.0   (default: the address above, and loopback)"
        )?,
    }
    writeln!(out)?;
    writeln!(
        out,
        "# Pod CIDRs must differ between clusters (Cilium Cluster Mesh routes them);"
    )?;
    writeln!(
        out,
        "# MetalLB pools are node-network addresses (host numbers or IPv4), inclusive."
    )?;
    writeln!(out, "clusters:")?;
    for c in &t.clusters {
        let role = match c.role {
            ClusterRole::Mgmt => {
                "mgmt    # platform services: Vault, observability, backup, ArgoCD"
            }
            ClusterRole::App => "app     # application workloads",
        };
        writeln!(out, "  - name: {}", scalar(&c.name))?;
        writeln!(out, "    role: {role}")?;
        writeln!(out, "    kubernetesVersion: {}", c.kubernetes_version)?;
        writeln!(out, "    podCidr: {}", c.pod_cidr)?;
        writeln!(out, "    serviceCidr: {}", c.service_cidr)?;
        writeln!(
            out,
            "    metallbPool: {{ start: {}, end: {} }}",
            address(c.metallb_pool.start),
            address(c.metallb_pool.end)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "# One control-plane node per cluster. Sizes take K/M/G/T (powers of 1024, as"
    )?;
    writeln!(
        out,
        "# Multipass reads them); kubeadm needs 2 vCPUs and 1700MiB on a control plane."
    )?;
    writeln!(out, "nodes:")?;
    for n in &t.nodes {
        let role = match n.role {
            NodeRole::ControlPlane => "control-plane",
            NodeRole::Worker => "worker",
        };
        writeln!(out, "  - name: {}", scalar(&n.name))?;
        writeln!(out, "    cluster: {}", scalar(&n.cluster))?;
        writeln!(out, "    role: {role}")?;
        writeln!(out, "    address: {}", address(n.address))?;
        writeln!(out, "    cpus: {}", n.cpus)?;
        writeln!(out, "    memory: {}", n.memory)?;
        writeln!(out, "    disk: {}", n.disk)?;
    }
    if t.managed_backups() {
        writeln!(out)?;
        writeln!(
            out,
            "# The object store on the host (Garage) and Velero on every cluster."
        )?;
        writeln!(out, "backups:")?;
        writeln!(out, "  managed: true")?;
    }
    if let Some(m) = &t.mirrors {
        writeln!(out)?;
        writeln!(
            out,
            "# Caches on the host the nodes use for packages and images."
        )?;
        writeln!(out, "mirrors:")?;
        if m.managed {
            writeln!(
                out,
                "  # Harbor (:8443) and Nexus (:8081) run by hostctl on the host's Docker."
            )?;
            writeln!(out, "  managed: true")?;
        }
        for (key, url) in [
            ("aptProxy", &m.apt_proxy),
            ("registryMirror", &m.registry_mirror),
            ("aptRepository", &m.apt_repository),
        ] {
            if let Some(url) = url {
                writeln!(out, "  {key}: {}", scalar(url.as_str()))?;
            }
        }
    }
    if let Some(endpoint) = t.telemetry.as_ref().and_then(|t| t.otlp_endpoint.as_ref()) {
        writeln!(out)?;
        writeln!(
            out,
            "# Where `hostctl up` sends traces when OTEL_EXPORTER_OTLP_ENDPOINT is unset."
        )?;
        writeln!(out, "telemetry:")?;
        writeln!(out, "  otlpEndpoint: {}", scalar(endpoint.as_str()))?;
    }
    if let Some(k) = t.k8sgpt() {
        writeln!(out)?;
        writeln!(
            out,
            "# k8sgpt's LLM backend (off without one). openai/google read their API key"
        )?;
        writeln!(
            out,
            "# from Vault (secret/mgmt/k8sgpt, property api-key), never from this file."
        )?;
        writeln!(out, "observability:")?;
        writeln!(out, "  k8sgpt:")?;
        writeln!(out, "    backend: {}", k.backend)?;
        writeln!(out, "    model: {}", scalar(&k.model))?;
        if let Some(url) = &k.base_url {
            writeln!(out, "    baseUrl: {}", scalar(url.as_str()))?;
        }
    }
    Ok(())
}

fn address(a: Address) -> String {
    match a {
        Address::Host(host) => host.to_string(),
        Address::Ip(ip) => ip.to_string(),
    }
}

/// `s` as a plain scalar when YAML reads it back as the same string, else
/// double-quoted (a JSON string is a valid YAML double-quoted scalar).
fn scalar(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && s.replace('_', "").parse::<f64>().is_err()
        && !s.starts_with("0x")
        && !s.starts_with("0o")
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "inf" | "nan"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::scalar;

    #[test]
    fn quotes_what_yaml_would_misread() {
        assert_eq!(scalar("mgmt-cp"), "mgmt-cp");
        assert_eq!(scalar("0.0.0.0"), "0.0.0.0");
        assert_eq!(scalar("10"), "\"10\"");
        assert_eq!(scalar("1.5"), "\"1.5\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("::"), "\"::\"");
        assert_eq!(scalar("a b: c"), "\"a b: c\"");
        assert_eq!(scalar(""), "\"\"");
        assert_eq!(scalar("1_000"), "\"1_000\"");
    }
}
