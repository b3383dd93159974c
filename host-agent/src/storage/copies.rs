//! The newest copy of each kind in the store, per cluster, with its age
//! against the recovery-point objective (24 h, spec SLOs): what `storage
//! status` shows so a stale backup is seen before it is needed.
//!
//! - etcd: the newest `.db` under `etcd/<cluster>/` (host key);
//! - Velero: the newest backup under `velero-<cluster>/<cluster>/backups/` (that
//!   cluster's key; Velero writes `backups/<name>/velero-backup.json`);
//! - Vault: the newest object of the `vault` bucket (mgmt only).

use super::plan::{ETCD_BUCKET, HOST_KEY, VAULT_BUCKET, velero_bucket, velero_key};
use super::s3::Entry;
use super::service::Storage;
use crate::snapshots::rpo::RPO;
use serde::Serialize;

/// One kind of copy of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    pub cluster: String,
    /// `etcd`, `velero` or `vault`.
    pub kind: &'static str,
    /// The newest object's key, if any.
    pub newest: Option<String>,
    pub age_secs: Option<u64>,
    /// `ok`, `overdue` (older than the RPO), `none` or `unknown (why)`.
    pub state: String,
}

fn newest(entries: &[Entry], keep: impl Fn(&Entry) -> bool) -> Option<&Entry> {
    entries
        .iter()
        .filter(|e| keep(e))
        .max_by(|a, b| a.last_modified.cmp(&b.last_modified))
}

fn judge(
    cluster: &str,
    kind: &'static str,
    listed: Result<Vec<Entry>, String>,
    keep: impl Fn(&Entry) -> bool,
    now: jiff::Timestamp,
) -> Copy {
    let base = Copy {
        cluster: cluster.to_owned(),
        kind,
        newest: None,
        age_secs: None,
        state: "none".into(),
    };
    let entries = match listed {
        Ok(e) => e,
        Err(why) => {
            return Copy {
                state: format!("unknown ({why})"),
                ..base
            };
        }
    };
    let Some(entry) = newest(&entries, keep) else {
        return base;
    };
    let age = entry
        .last_modified
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| now.duration_since(t).as_secs().max(0) as u64);
    let state = match age {
        Some(a) if a > RPO.as_secs() => "overdue",
        Some(_) => "ok",
        None => "unknown (no time)",
    };
    Copy {
        newest: Some(entry.key.clone()),
        age_secs: age,
        state: state.into(),
        ..base
    }
}

/// Every cluster's copies, in cluster order.
pub async fn newest_copies(storage: &Storage, now: jiff::Timestamp) -> Vec<Copy> {
    let mut out = Vec::new();
    let host = storage.client(HOST_KEY).map_err(|e| e.to_string());
    for cluster in &storage.clusters {
        let listed = match &host {
            Ok(c) => c
                .list(ETCD_BUCKET, &format!("{cluster}/"))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        out.push(judge(
            cluster,
            "etcd",
            listed,
            |e| e.key.ends_with(".db"),
            now,
        ));
        let listed = match storage.client(&velero_key(cluster)) {
            Ok(c) => c
                .list(&velero_bucket(cluster), &format!("{cluster}/backups/"))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.push(judge(
            cluster,
            "velero",
            listed,
            |e| e.key.ends_with("/velero-backup.json"),
            now,
        ));
        if cluster == "mgmt" {
            let listed = match &host {
                Ok(c) => c.list(VAULT_BUCKET, "").await.map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            out.push(judge(cluster, "vault", listed, |_| true, now));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, at: &str) -> Entry {
        Entry {
            key: key.into(),
            size: 1,
            last_modified: at.into(),
        }
    }

    #[test]
    fn the_newest_copy_is_judged_against_the_rpo() {
        let now: jiff::Timestamp = "2026-12-03T12:00:00Z".parse().unwrap();
        let listed = vec![
            entry("app1/a.db", "2026-12-01T12:00:00.000Z"),
            entry("app1/a.json", "2026-12-03T11:00:00.000Z"),
            entry("app1/b.db", "2026-12-02T13:00:00.000Z"),
        ];
        let c = judge(
            "app1",
            "etcd",
            Ok(listed.clone()),
            |e| e.key.ends_with(".db"),
            now,
        );
        assert_eq!(c.newest.as_deref(), Some("app1/b.db"));
        assert_eq!(c.age_secs, Some(23 * 3600));
        assert_eq!(c.state, "ok");
        let old = vec![entry("app1/a.db", "2026-12-01T12:00:00.000Z")];
        assert_eq!(
            judge("app1", "etcd", Ok(old), |_| true, now).state,
            "overdue"
        );
        assert_eq!(
            judge("app1", "etcd", Ok(vec![]), |_| true, now).state,
            "none"
        );
        let err = judge("app1", "etcd", Err("refused".into()), |_| true, now);
        assert_eq!(err.state, "unknown (refused)");
    }
}
