//! `hostctl status`'s backup lines, for a topology whose backups hostctl
//! manages: the object store's state, then per cluster the newest copy of
//! each kind (etcd snapshot, Velero backup, and mgmt's Vault snapshot) with
//! its age against the 24 h RPO. Never fails — a stopped store is a state.
//! The JSON form is `hostctl storage status -o json`.

use crate::cli::Context;
use crate::storage::copies::Copy;
use crate::workspace::Workspace;
use std::collections::BTreeMap;

/// The lines, empty when the topology does not manage backups.
pub async fn lines(ctx: &Context) -> Vec<String> {
    let Ok(workspace) = Workspace::recorded(ctx) else {
        return Vec::new();
    };
    if !workspace.topology.managed_backups() {
        return Vec::new();
    }
    let status = crate::commands::storage::real(ctx, &workspace.resolved)
        .status()
        .await;
    let mut out = vec![format!(
        "backups: object store {} ({}) at {}",
        status.state, status.health, status.s3_url
    )];
    out.extend(per_cluster(&status.copies));
    out
}

/// `backups app1: etcd 3h02m ok, velero 20h11m ok (RPO 24h)`, one line per
/// cluster in the copies' order.
fn per_cluster(copies: &[Copy]) -> Vec<String> {
    let mut clusters: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in copies {
        let age = c
            .age_secs
            .map(|a| format!("{}h{:02}m ", a / 3600, a % 3600 / 60))
            .unwrap_or_default();
        clusters
            .entry(&c.cluster)
            .or_default()
            .push(format!("{} {age}{}", c.kind, c.state));
    }
    clusters
        .into_iter()
        .map(|(cluster, kinds)| format!("backups {cluster}: {} (RPO 24h)", kinds.join(", ")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(cluster: &str, kind: &'static str, age: Option<u64>, state: &str) -> Copy {
        Copy {
            cluster: cluster.into(),
            kind,
            newest: age.map(|_| "x".into()),
            age_secs: age,
            state: state.into(),
        }
    }

    #[test]
    fn each_cluster_gets_one_line_with_each_kind_and_its_age() {
        let lines = per_cluster(&[
            copy("app1", "etcd", Some(3 * 3600 + 120), "ok"),
            copy("app1", "velero", None, "none"),
            copy("mgmt", "vault", Some(30 * 3600), "overdue"),
        ]);
        assert_eq!(
            lines,
            [
                "backups app1: etcd 3h02m ok, velero none (RPO 24h)",
                "backups mgmt: vault 30h00m overdue (RPO 24h)",
            ]
        );
    }
}
