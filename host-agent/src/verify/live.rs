//! The live side of `verify`: the same contracts read from a running
//! cluster through its API server (the admin identity minted from its CA),
//! as the components publish their state — Cilium's `cilium-config`,
//! cert-manager's ClusterIssuer conditions, External Secrets' status and
//! target Secrets (metadata only: no secret value is read), Kyverno's
//! Deployment and policies, the admission webhooks, and the Prometheus
//! agent's own remote-write figures.
//!
//! A cluster that does not answer makes its checks `cannot tell`, never a
//! failure of `verify` itself.

use super::contracts::{C1, C2, C3, C4, C5, C6, SPEC_REFRESH, webhooks_outside_cluster};
use super::{Check, Source, Verdict};
use crate::addons::catalogue::Addon;
use crate::cluster_api::health::STATUS_TIMEOUT;
use crate::cluster_api::read::get_json as get;
use serde_json::Value;
use topology::ClusterRole;

/// Every live check of one cluster.
pub async fn cluster_checks(client: &kube::Client, cluster: &str, role: ClusterRole) -> Vec<Check> {
    let mut checks = vec![
        c3(client, cluster).await,
        c4(client, cluster, role).await,
        c5(client, cluster).await,
        c6(client, cluster).await,
    ];
    if role != ClusterRole::Mgmt {
        checks.push(c1(client, cluster).await);
        checks.push(c2(client, cluster).await);
    }
    checks
}

/// Checks for a cluster whose API server could not be reached.
pub fn unreachable(cluster: &str, role: ClusterRole, why: &str) -> Vec<Check> {
    let mut contracts = vec![C3, C4, C5, C6];
    if role != ClusterRole::Mgmt {
        contracts.extend([C1, C2]);
    }
    contracts
        .into_iter()
        .map(|c| {
            check(
                c,
                cluster,
                Verdict::CannotTell,
                vec![format!("API server: {why}")],
            )
        })
        .collect()
}

fn check(
    c: (&'static str, &'static str),
    cluster: &str,
    verdict: Verdict,
    evidence: Vec<String>,
) -> Check {
    Check {
        contract: c.0,
        promise: c.1,
        cluster: Some(cluster.to_owned()),
        source: Source::Live,
        verdict,
        evidence,
    }
}

fn found(
    c: (&'static str, &'static str),
    cluster: &str,
    broken: Vec<String>,
    held: Vec<String>,
) -> Check {
    Check::from_findings(c, Some(cluster), broken, held).live()
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// `status.conditions[type=Ready]`: `Ok(())` when True, else its reason.
fn ready(o: &Value) -> Result<(), String> {
    let c = o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    match c {
        Some(c) if c["status"] == "True" => Ok(()),
        Some(c) => Err(format!(
            "{}: {}",
            c["reason"].as_str().unwrap_or("not ready"),
            c["message"].as_str().unwrap_or_default()
        )),
        None => Err("no Ready condition yet".into()),
    }
}

fn name_of(o: &Value) -> String {
    let name = o["metadata"]["name"].as_str().unwrap_or("?");
    match o["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// C1: no admission webhook on the cluster calls a URL outside it.
async fn c1(client: &kube::Client, cluster: &str) -> Check {
    let mut broken = Vec::new();
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        let plural = format!("{}s", kind.to_lowercase());
        match get(
            client,
            &format!("/apis/admissionregistration.k8s.io/v1/{plural}"),
        )
        .await
        {
            Ok(list) => broken.extend(webhooks_outside_cluster(
                kind,
                &list.map(|l| items(&l)).unwrap_or_default(),
            )),
            Err(e) => return check(C1, cluster, Verdict::CannotTell, vec![e]),
        }
    }
    let held = vec!["every admission webhook calls an in-cluster Service".into()];
    found(C1, cluster, broken, held)
}

/// C2: the agent's backlog is inside what its WAL keeps.
async fn c2(client: &kube::Client, cluster: &str) -> Check {
    let shipping = match crate::addons::observability::shipping::agent_shipping(client).await {
        Ok(s) => s,
        Err(e) => {
            return check(
                C2,
                cluster,
                Verdict::CannotTell,
                vec![format!("the agent's /metrics: {e}")],
            );
        }
    };
    let keeps = shipping.wal_keeps_seconds as f64;
    match shipping.backlog_seconds {
        None => check(
            C2,
            cluster,
            Verdict::CannotTell,
            vec!["the agent has sent nothing yet".into()],
        ),
        Some(b) if b >= keeps => found(
            C2,
            cluster,
            vec![format!(
                "remote write is {b:.0} s behind: past the {keeps:.0} s the WAL keeps, samples are being lost"
            )],
            vec![],
        ),
        Some(b) => found(
            C2,
            cluster,
            vec![],
            vec![format!(
                "remote write is {b:.0} s behind, within the {keeps:.0} s the WAL keeps"
            )],
        ),
    }
}

/// C3: every ExternalSecret refreshes hourly and its Secret exists.
pub async fn c3(client: &kube::Client, cluster: &str) -> Check {
    let list = match get(client, "/apis/external-secrets.io/v1/externalsecrets").await {
        Ok(Some(list)) => items(&list),
        Ok(None) => {
            return check(
                C3,
                cluster,
                Verdict::NotInstalled,
                vec!["no ExternalSecret API (External Secrets is not installed)".into()],
            );
        }
        Err(e) => return check(C3, cluster, Verdict::CannotTell, vec![e]),
    };
    if list.is_empty() {
        return check(
            C3,
            cluster,
            Verdict::CannotTell,
            vec!["no ExternalSecret on the cluster".into()],
        );
    }
    let (mut broken, mut held) = (Vec::new(), Vec::new());
    for es in &list {
        let name = name_of(es);
        let every = es["spec"]["refreshInterval"]
            .as_str()
            .unwrap_or(SPEC_REFRESH);
        if every != SPEC_REFRESH {
            broken.push(format!(
                "ExternalSecret {name} refreshes every {every}, not {SPEC_REFRESH}"
            ));
        }
        let ns = es["metadata"]["namespace"].as_str().unwrap_or("default");
        let target = es["spec"]["target"]["name"]
            .as_str()
            .or(es["metadata"]["name"].as_str())
            .unwrap_or_default();
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client.clone(), ns);
        let exists = tokio::time::timeout(STATUS_TIMEOUT, secrets.get_metadata_opt(target)).await;
        match (exists, ready(es)) {
            (Ok(Ok(Some(_))), Ok(())) => {
                held.push(format!("{name}: synced, Secret {target} present"))
            }
            (Ok(Ok(Some(_))), Err(why)) => held.push(format!(
                "{name}: not refreshing ({why}), Secret {target} kept"
            )),
            (Ok(Ok(None)), why) => broken.push(format!(
                "{name}: Secret {target} is missing{}",
                why.err().map(|w| format!(" ({w})")).unwrap_or_default()
            )),
            (Ok(Err(e)), _) => broken.push(format!("{name}: Secret {target}: {e}")),
            (Err(_), _) => {
                return check(
                    C3,
                    cluster,
                    Verdict::CannotTell,
                    vec![format!("Secret {ns}/{target}: no answer")],
                );
            }
        }
    }
    found(C3, cluster, broken, held)
}

/// C4: Kyverno's admission controller on app clusters, enforcing; none on mgmt.
async fn c4(client: &kube::Client, cluster: &str, role: ClusterRole) -> Check {
    if Addon::named("kyverno").is_none() {
        return check(
            C4,
            cluster,
            Verdict::NotInstalled,
            vec!["no kyverno add-on in the catalogue".into()],
        );
    }
    let kyverno = match crate::addons::kyverno::live::read(client).await {
        Ok(k) => k,
        Err(e) => return check(C4, cluster, Verdict::CannotTell, vec![e]),
    };
    let (broken, held) = match (role, kyverno.admission) {
        (ClusterRole::Mgmt, true) => (
            vec!["Kyverno's admission controller runs on mgmt".into()],
            vec![],
        ),
        (ClusterRole::Mgmt, false) => (
            vec![],
            vec!["no Kyverno admission controller on mgmt".into()],
        ),
        (_, false) => (vec!["no Kyverno admission controller".into()], vec![]),
        (_, true) if kyverno.enforced.is_empty() => (
            vec!["Kyverno runs but no ValidatingPolicy denies".into()],
            vec![],
        ),
        (_, true) => (
            vec![],
            vec![format!(
                "Kyverno enforcing {}; auditing {} ({} audit violations)",
                kyverno.enforced.join(", "),
                kyverno.audited.join(", "),
                kyverno.audit_violations
            )],
        ),
    };
    found(C4, cluster, broken, held)
}

/// C5: the lab-CA issuer is Ready, then Vault's is (and serving).
async fn c5(client: &kube::Client, cluster: &str) -> Check {
    let issuer = |name: &str| format!("/apis/cert-manager.io/v1/clusterissuers/{name}");
    let (lab, vault) = match (
        get(client, &issuer("lab-ca")).await,
        get(client, &issuer("vault")).await,
    ) {
        (Ok(lab), Ok(vault)) => (lab, vault),
        (Err(e), _) | (_, Err(e)) => return check(C5, cluster, Verdict::CannotTell, vec![e]),
    };
    let Some(lab) = lab else {
        return check(
            C5,
            cluster,
            Verdict::NotInstalled,
            vec!["no ClusterIssuer lab-ca (phase 1)".into()],
        );
    };
    let mut broken = Vec::new();
    if let Err(why) = ready(&lab) {
        broken.push(format!("ClusterIssuer lab-ca is not Ready: {why}"));
    }
    match vault.as_ref().map(ready) {
        None => broken.push("no ClusterIssuer vault: phase 2 has not happened".into()),
        Some(Err(why)) => broken.push(format!("ClusterIssuer vault is not Ready: {why}")),
        Some(Ok(())) => {}
    }
    let held = vec!["ClusterIssuer lab-ca Ready, ClusterIssuer vault Ready (serving)".into()];
    found(C5, cluster, broken, held)
}

/// C6: Cilium's running configuration says tunnel and VXLAN.
async fn c6(client: &kube::Client, cluster: &str) -> Check {
    let config = match get(
        client,
        "/api/v1/namespaces/kube-system/configmaps/cilium-config",
    )
    .await
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            return check(
                C6,
                cluster,
                Verdict::NotInstalled,
                vec!["no kube-system/cilium-config".into()],
            );
        }
        Err(e) => return check(C6, cluster, Verdict::CannotTell, vec![e]),
    };
    let data = &config["data"];
    let (mode, tunnel) = (&data["routing-mode"], &data["tunnel-protocol"]);
    let mut broken = Vec::new();
    if mode != "tunnel" {
        broken.push(format!(
            "cilium-config routing-mode is {mode}, not \"tunnel\""
        ));
    }
    if tunnel != "vxlan" {
        broken.push(format!(
            "cilium-config tunnel-protocol is {tunnel}, not \"vxlan\""
        ));
    }
    let held = vec!["cilium-config: routing-mode tunnel, tunnel-protocol vxlan".into()];
    found(C6, cluster, broken, held)
}
