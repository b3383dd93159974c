//! `hostctl status`'s policy lines (C4): per cluster, whether Kyverno is
//! there, which of its policies enforce and which only audit, and how many
//! audit violations its reports hold — read live through each app
//! cluster's API server once `up` installed Kyverno there. mgmt is listed
//! as never having Kyverno (C4 keeps it off; `verify` checks it live).
//! Unreachable is a state, not a failure: the row says why instead.

use super::StatusView;
use crate::addons::kyverno::KYVERNO;
use crate::addons::kyverno::live::{self, KyvernoLive};
use crate::cli::Context;
use crate::cluster_api::client::admin_client;
use crate::cluster_api::health::STATUS_TIMEOUT;
use crate::orchestrator::{STATE_FILE, UpState};
use crate::state_file::StateDocument as _;
use serde::Serialize;
use std::sync::Arc;
use topology::ClusterRole;

/// The policy part of `status`: one row per cluster `up` has built.
#[derive(Debug, Default, Serialize)]
pub struct PolicyView {
    pub clusters: Vec<PolicyRow>,
}

/// One cluster's Kyverno.
#[derive(Debug, Serialize)]
pub struct PolicyRow {
    pub cluster: String,
    pub kyverno: KyvernoState,
}

/// What `status` knows of a cluster's Kyverno.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KyvernoState {
    /// mgmt: C4 keeps Kyverno off it.
    Never,
    /// An app cluster whose Kyverno step has not run yet.
    NotInstalled,
    /// Read from the cluster.
    Live(KyvernoLive),
    /// The cluster did not answer.
    Error(String),
}

/// Adds the policy rows for every cluster whose kubeconfig `up` minted.
pub async fn with_policy(mut v: StatusView, ctx: &Context) -> StatusView {
    let Ok(workspace) = crate::workspace::Workspace::recorded(ctx) else {
        return v;
    };
    let Ok(pki) = certs::Pki::open(ctx.home.root()) else {
        return v;
    };
    let state = UpState::load(&ctx.home.root().join(STATE_FILE)).unwrap_or_default();
    let (pki, resolved) = (Arc::new(pki), Arc::new(workspace.resolved));
    let mut probes = tokio::task::JoinSet::new();
    for (order, cluster) in resolved.topology().clusters().iter().enumerate() {
        if !state.step_done(&format!("kubeconfig/{}", cluster.name)) {
            continue;
        }
        let installed = state.addon_done(&cluster.name, KYVERNO.name);
        let (pki, resolved, name, role) = (
            pki.clone(),
            resolved.clone(),
            cluster.name.clone(),
            cluster.role,
        );
        probes.spawn(async move {
            let kyverno = match (role, installed) {
                (ClusterRole::Mgmt, _) => KyvernoState::Never,
                (_, false) => KyvernoState::NotInstalled,
                (_, true) => match admin_client(&pki, &resolved, &name, STATUS_TIMEOUT).await {
                    Ok((client, _)) => match live::read(&client).await {
                        Ok(k) => KyvernoState::Live(k),
                        Err(e) => KyvernoState::Error(e),
                    },
                    Err(e) => KyvernoState::Error(e.to_string()),
                },
            };
            (
                order,
                PolicyRow {
                    cluster: name,
                    kyverno,
                },
            )
        });
    }
    let mut rows = Vec::new();
    while let Some(Ok(row)) = probes.join_next().await {
        rows.push(row);
    }
    if rows.is_empty() {
        return v;
    }
    rows.sort_by_key(|(order, _)| *order);
    v.policy = Some(PolicyView {
        clusters: rows.into_iter().map(|(_, r)| r).collect(),
    });
    v
}

/// The table's lines: one per cluster.
pub fn lines(v: &PolicyView) -> Vec<String> {
    v.clusters
        .iter()
        .map(|r| format!("{}: kyverno {}", r.cluster, state_line(&r.kyverno)))
        .collect()
}

fn state_line(k: &KyvernoState) -> String {
    match k {
        KyvernoState::Never => "never on mgmt (C4)".to_owned(),
        KyvernoState::NotInstalled => "not installed yet".to_owned(),
        KyvernoState::Error(e) => format!("unknown ({e})"),
        KyvernoState::Live(k) if !k.admission => {
            "MISSING: no admission controller (hostctl up reinstalls it)".to_owned()
        }
        KyvernoState::Live(k) => {
            let names = |n: &[String]| match n.is_empty() {
                true => "none".to_owned(),
                false => n.join(", "),
            };
            format!(
                "enforcing {}; auditing {}: {} audit violation{}",
                names(&k.enforced),
                names(&k.audited),
                k.audit_violations,
                if k.audit_violations == 1 { "" } else { "s" }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_has_a_line_that_says_what_to_know() {
        let live = KyvernoLive {
            admission: true,
            enforced: vec!["a".into(), "b".into()],
            audited: vec!["labels".into()],
            audit_violations: 1,
        };
        let v = PolicyView {
            clusters: vec![
                PolicyRow {
                    cluster: "mgmt".into(),
                    kyverno: KyvernoState::Never,
                },
                PolicyRow {
                    cluster: "app1".into(),
                    kyverno: KyvernoState::Live(live),
                },
                PolicyRow {
                    cluster: "app2".into(),
                    kyverno: KyvernoState::NotInstalled,
                },
                PolicyRow {
                    cluster: "app3".into(),
                    kyverno: KyvernoState::Live(KyvernoLive::default()),
                },
            ],
        };
        assert_eq!(
            lines(&v),
            [
                "mgmt: kyverno never on mgmt (C4)",
                "app1: kyverno enforcing a, b; auditing labels: 1 audit violation",
                "app2: kyverno not installed yet",
                "app3: kyverno MISSING: no admission controller (hostctl up reinstalls it)",
            ]
        );
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(json["clusters"][0]["kyverno"], "never");
        assert_eq!(
            json["clusters"][1]["kyverno"]["live"]["audit_violations"],
            1
        );
        assert_eq!(json["clusters"][1]["kyverno"]["live"]["enforced"][1], "b");
    }
}
