//! The contracts, one pure function each over rendered material: Helm
//! values and objects as JSON, the catalogue entries a cluster gets.
//! Evidence names the add-on, object and field, so a broken verdict says
//! what to change.

use super::{Check, Source, Verdict};
use crate::addons::catalogue::Addon;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::Duration;
use topology::ClusterRole;

pub const C1: (&str, &str) = (
    "C1",
    "app workloads keep running without mgmt: nothing on an app cluster blocks on mgmt",
);
pub const C2: (&str, &str) = (
    "C2",
    "the app clusters' Prometheus agent buffers a mgmt outage (≈2.7 h) in a WAL on a volume",
);
pub const C3: (&str, &str) = (
    "C3",
    "External Secrets refresh every hour from Vault; synced Secrets outlive a Vault outage",
);
pub const C4: (&str, &str) = ("C4", "Kyverno runs on the app clusters only, enforcing");
pub const C5: (&str, &str) = (
    "C5",
    "two-phase PKI: the lab-CA issuer first, then Vault's issuer once Vault exists",
);
pub const C6: (&str, &str) = ("C6", "Cilium in tunnel mode with VXLAN on every cluster");

/// The outage the spec's WAL buffer covers (C2: ≈2.7 h, i.e. 2 h 42 min).
pub const SPEC_OUTAGE: Duration = Duration::from_secs(2 * 3600 + 42 * 60);
/// C3's refresh interval.
pub const SPEC_REFRESH: &str = "1h";

/// Rendered material of one add-on on one cluster.
#[derive(Debug, Clone)]
pub struct Material {
    pub addon: &'static str,
    /// Helm values (charted add-ons).
    pub values: Option<Value>,
    /// The objects applied after the chart.
    pub objects: Vec<Value>,
}

/// Add-ons that may name mgmt on an app cluster, and why that does not
/// make the cluster depend on mgmt to keep running.
pub const NON_BLOCKING: &[(&str, &str)] = &[
    (
        "prometheus-agent",
        "remote write to Thanos Receive: the agent buffers in its WAL (C2)",
    ),
    (
        "alloy",
        "log push to Loki: Alloy retries and reads on from its positions",
    ),
    (
        "secret-store",
        "External Secrets reads Vault on refresh; synced Secrets stay (C3)",
    ),
    (
        "vault-issuer",
        "cert-manager signs new certificates through Vault; issued ones stay valid",
    ),
    ("falco", "alert push to Loki; detection goes on locally"),
];

/// C1 on an app cluster: every mention of a mgmt address in its rendered
/// values and objects belongs to an add-on that does not block on it.
pub fn c1(cluster: &str, material: &[Material], mgmt: &[(String, Ipv4Addr)]) -> Check {
    let (mut broken, mut held) = (Vec::new(), Vec::new());
    for m in material {
        let mut found = Vec::new();
        if let Some(v) = &m.values {
            mentions_of(v, "values", mgmt, &mut found);
        }
        for o in &m.objects {
            mentions_of(o, &describe(o), mgmt, &mut found);
        }
        for kind in [
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ] {
            let hooks: Vec<Value> = m
                .objects
                .iter()
                .filter(|o| o["kind"] == kind)
                .cloned()
                .collect();
            for hook in webhooks_outside_cluster(kind, &hooks) {
                broken.push(format!("{}: {hook}", m.addon));
            }
        }
        for (at, what) in found {
            match NON_BLOCKING.iter().find(|(a, _)| *a == m.addon) {
                Some((_, why)) => held.push(format!("{}: {at} names mgmt's {what}: {why}", m.addon)),
                None => broken.push(format!(
                    "{}: {at} names mgmt's {what}, and nothing says the cluster survives without it",
                    m.addon
                )),
            }
        }
    }
    held.sort();
    held.dedup();
    if held.is_empty() && broken.is_empty() {
        held.push("no rendered object or value names mgmt".into());
    }
    Check::from_findings(C1, Some(cluster), broken, held)
}

/// C2 on an app cluster, from the Prometheus agent's rendered values.
pub fn c2(cluster: &str, agent_values: Option<&Value>) -> Check {
    let Some(v) = agent_values else {
        return not_installed(C2, cluster, "no prometheus-agent add-on on this cluster");
    };
    let prom = &v["prometheus"];
    let spec = &prom["prometheusSpec"];
    let mut broken = Vec::new();
    let mut held = Vec::new();
    if prom["agentMode"] == true {
        held.push("prometheus.agentMode: true".into());
    } else {
        broken.push("prometheus.agentMode is not true: a full Prometheus, not an agent".into());
    }
    match spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
        .as_str()
    {
        Some(size) => held.push(format!("WAL on a {size} volume")),
        None => broken.push(
            "prometheusSpec.storageSpec has no volumeClaimTemplate: the WAL dies with the pod"
                .into(),
        ),
    }
    let max_time = spec["additionalArgs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == "storage.agent.retention.max-time")
        .and_then(|a| a["value"].as_str());
    match max_time.map(|t| (t, go_duration(t))) {
        Some((t, Some(d))) if d >= SPEC_OUTAGE => {
            held.push(format!("WAL max-time {t} covers the spec's 2h42m"));
        }
        Some((t, _)) => broken.push(format!(
            "storage.agent.retention.max-time {t} is shorter than the spec's 2h42m"
        )),
        None => broken.push(
            "no storage.agent.retention.max-time: Prometheus' default may drop an outage".into(),
        ),
    }
    if spec["remoteWrite"].as_array().is_none_or(Vec::is_empty) {
        broken.push("prometheusSpec.remoteWrite is empty: nothing ships to mgmt".into());
    }
    Check::from_findings(C2, Some(cluster), broken, held)
}

/// C3 on a cluster, from its rendered objects: every ExternalSecret
/// refreshes every hour, through a ClusterSecretStore.
pub fn c3(cluster: &str, objects: &[Value]) -> Check {
    let secrets: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ExternalSecret")
        .collect();
    let stores = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterSecretStore")
        .count();
    if secrets.is_empty() && stores == 0 {
        return not_installed(
            C3,
            cluster,
            "no ClusterSecretStore or ExternalSecret rendered",
        );
    }
    let mut broken = Vec::new();
    for s in &secrets {
        let every = s["spec"]["refreshInterval"]
            .as_str()
            .unwrap_or("(unset: ESO's 1h)");
        if every != SPEC_REFRESH && !every.starts_with("(unset") {
            broken.push(format!(
                "{} refreshes every {every}, not {SPEC_REFRESH}",
                describe(s)
            ));
        }
    }
    if stores == 0 {
        broken.push("ExternalSecrets without a ClusterSecretStore".into());
    }
    let held = vec![format!(
        "{} ExternalSecret(s) refresh every {SPEC_REFRESH} through {stores} ClusterSecretStore(s)",
        secrets.len()
    )];
    Check::from_findings(C3, Some(cluster), broken, held)
}

/// C4 across the environment: Kyverno on every app cluster, on no mgmt
/// cluster, with at least one enforcing policy where it runs.
/// `clusters`: (name, role, rendered material).
pub fn c4(clusters: &[(String, ClusterRole, Vec<Material>)]) -> Check {
    let kyverno = |m: &[Material]| m.iter().any(|a| a.addon == "kyverno");
    if !clusters.iter().any(|(_, _, m)| kyverno(m)) {
        return Check {
            contract: C4.0,
            promise: C4.1,
            cluster: None,
            source: Source::Rendered,
            verdict: Verdict::NotInstalled,
            evidence: vec!["no kyverno add-on is planned on any cluster".into()],
        };
    }
    let (mut broken, mut held) = (Vec::new(), Vec::new());
    for (name, role, material) in clusters {
        let enforcing: Vec<String> = material
            .iter()
            .flat_map(|m| &m.objects)
            .filter(|o| o["kind"] == "ValidatingPolicy")
            .filter(|o| {
                o["spec"]["validationActions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "Deny"))
            })
            .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        match (role, kyverno(material)) {
            (ClusterRole::Mgmt, true) => broken.push(format!("{name} (mgmt) has a kyverno step")),
            (ClusterRole::Mgmt, false) => held.push(format!("{name} (mgmt): no Kyverno")),
            (_, false) => broken.push(format!("{name} (app) has no kyverno step")),
            (_, true) if enforcing.is_empty() => {
                broken.push(format!(
                    "{name}: Kyverno without an enforcing (Deny) policy"
                ));
            }
            (_, true) => held.push(format!(
                "{name}: Kyverno enforcing {}",
                enforcing.join(", ")
            )),
        }
    }
    Check::from_findings(C4, None, broken, held)
}

/// C5 on a cluster, from the catalogue entries it gets: phase 1 (the
/// lab-CA issuer) is there, and phase 2 (Vault's issuer) waits for it and
/// for mgmt's Vault.
pub fn c5(cluster: &str, addons: &[&Addon]) -> Check {
    let named = |n: &str| addons.iter().find(|a| a.name == n);
    let (Some(_), phase_two) = (named("lab-ca"), named("vault-issuer")) else {
        return not_installed(C5, cluster, "no lab-ca issuer (phase 1) on this cluster");
    };
    let Some(issuer) = phase_two else {
        return Check {
            contract: C5.0,
            promise: C5.1,
            cluster: Some(cluster.to_owned()),
            source: Source::Rendered,
            verdict: Verdict::CannotTell,
            evidence: vec!["phase 1 only: no mgmt Vault in this topology for phase 2".into()],
        };
    };
    let mut broken = Vec::new();
    if !issuer.depends_on.contains(&"lab-ca") {
        broken.push("vault-issuer does not wait for lab-ca: phase 2 could come first".into());
    }
    if !issuer.after_mgmt.contains(&"vault") {
        broken.push("vault-issuer does not wait for mgmt's vault".into());
    }
    let held = vec!["lab-ca, then vault-issuer after lab-ca and mgmt's vault".into()];
    Check::from_findings(C5, Some(cluster), broken, held)
}

/// C6 on a cluster, from its Cilium values.
pub fn c6(cluster: &str, cilium: &Value) -> Check {
    let (mode, tunnel) = (&cilium["routingMode"], &cilium["tunnelProtocol"]);
    let mut broken = Vec::new();
    if mode != "tunnel" {
        broken.push(format!("cilium routingMode is {mode}, not \"tunnel\""));
    }
    if tunnel != "vxlan" {
        broken.push(format!("cilium tunnelProtocol is {tunnel}, not \"vxlan\""));
    }
    let held = vec!["cilium routingMode: tunnel, tunnelProtocol: vxlan".into()];
    Check::from_findings(C6, Some(cluster), broken, held)
}

fn not_installed(contract: (&'static str, &'static str), cluster: &str, why: &str) -> Check {
    Check {
        contract: contract.0,
        promise: contract.1,
        cluster: Some(cluster.to_owned()),
        source: Source::Rendered,
        verdict: Verdict::NotInstalled,
        evidence: vec![why.to_owned()],
    }
}

/// `Kind namespace/name` of an object.
fn describe(o: &Value) -> String {
    let name = o["metadata"]["name"].as_str().unwrap_or("?");
    match o["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{} {ns}/{name}", o["kind"].as_str().unwrap_or("?")),
        None => format!("{} {name}", o["kind"].as_str().unwrap_or("?")),
    }
}

/// Every string under `v` that names one of `mgmt`'s addresses, as
/// (where, which address).
fn mentions_of(v: &Value, at: &str, mgmt: &[(String, Ipv4Addr)], out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => {
            for (what, ip) in mgmt {
                if names_address(s, *ip) {
                    out.push((at.to_owned(), format!("{what} ({ip})")));
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| mentions_of(i, at, mgmt, out)),
        Value::Object(map) => map.values().for_each(|i| mentions_of(i, at, mgmt, out)),
        _ => {}
    }
}

/// Whether `s` contains `ip` as a whole address (`10.0.0.2` is not in
/// `10.0.0.21` or `110.0.0.2`).
pub fn names_address(s: &str, ip: Ipv4Addr) -> bool {
    let ip = ip.to_string();
    s.match_indices(&ip).any(|(at, _)| {
        let before = s[..at].chars().next_back();
        let after = s[at + ip.len()..].chars().next();
        let part_of_number = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == '.');
        !part_of_number(before) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Admission webhooks of `configs` (objects of `kind`, as rendered or as
/// a list's items) that call a URL instead of an in-cluster Service: the
/// API server then blocks admissions on something outside the cluster.
pub fn webhooks_outside_cluster(kind: &str, configs: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for config in configs {
        let name = config["metadata"]["name"].as_str().unwrap_or("?");
        for w in config["webhooks"].as_array().into_iter().flatten() {
            if let Some(url) = w["clientConfig"]["url"].as_str() {
                out.push(format!("{kind} {name} calls {url} for admission"));
            }
        }
    }
    out
}

/// A Prometheus duration of one unit (`6h`, `90m`, `30s`), as rendered.
fn go_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "h" => n * 3600,
        "m" => n * 60,
        "s" => n,
        "d" => n * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests;
