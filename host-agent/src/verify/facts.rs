//! The SLO-facing facts `verify` reports beside the contracts, from what
//! this home keeps: each built cluster's newest etcd snapshot against the
//! RPO, the nearest certificate expiry of the PKI, Vault's seal state, and
//! the Velero and Vault copies in the host's object store. Judged at `now`,
//! given, so tests move time instead of waiting for it.

use super::{Check, Source, Verdict};
use crate::snapshots::SnapshotStore;
use crate::snapshots::rpo::{RPO, assess};
use std::time::{Duration, SystemTime};

pub const RPO_FACT: (&str, &str) = (
    "RPO",
    "etcd: at most 24 h of a cluster's state is lost (RPO)",
);
pub const CERTS_FACT: (&str, &str) = (
    "CERTS",
    "no certificate of the PKI expires within a week (leaves renew 30 days before)",
);

pub const VAULT_FACT: (&str, &str) = (
    "VAULT",
    "mgmt's Vault is unsealed and answering (P0: every cluster's secrets come from it)",
);
pub const BACKUP_FACT: (&str, &str) = (
    "BACKUPS",
    "Velero backups and Vault snapshots are at most 24 h old (RPO)",
);

pub const MIRRORS_FACT: (&str, &str) = (
    "MIRRORS",
    "the registry and package mirrors hostctl manages are healthy (Harbor is P0, RTO 15 min)",
);

/// A certificate this close to its end is a problem now: renewal (30
/// days before) did not happen.
pub const CERT_DANGER: Duration = Duration::from_secs(7 * 86_400);

/// The newest snapshot of each of `built` (clusters `up` built) against
/// the RPO.
pub fn snapshots(store: &SnapshotStore, built: &[String], now: SystemTime) -> Vec<Check> {
    built
        .iter()
        .map(|cluster| {
            let (verdict, evidence) = match store.list(cluster) {
                Ok(list) => {
                    // No snapshot yet is not judged a breach here: verify
                    // does not know whether the cluster's etcd runs (status,
                    // which has the agents' reports, does).
                    let health = assess(list.last(), false, now);
                    match (&health.latest, health.age_seconds) {
                        (Some(file), Some(age)) => (
                            if health.rpo_breach {
                                Verdict::Broken
                            } else {
                                Verdict::Holds
                            },
                            format!(
                                "newest snapshot {file}, {} h old (RPO {} h)",
                                age / 3600,
                                RPO.as_secs() / 3600
                            ),
                        ),
                        _ => (
                            Verdict::CannotTell,
                            format!(
                                "no etcd snapshot stored yet (`hostctl etcd snapshot {cluster}`)"
                            ),
                        ),
                    }
                }
                Err(e) => (Verdict::CannotTell, format!("snapshot store: {e}")),
            };
            Check {
                contract: RPO_FACT.0,
                promise: RPO_FACT.1,
                cluster: Some(cluster.clone()),
                source: Source::Live,
                verdict,
                evidence: vec![evidence],
            }
        })
        .collect()
}

/// The PKI's certificates (path, not-after) against [`CERT_DANGER`].
pub fn certificates(certs: &[(String, SystemTime)], now: SystemTime) -> Check {
    let mut broken = Vec::new();
    for (path, not_after) in certs {
        match not_after.duration_since(now) {
            Err(_) => broken.push(format!("{path} has expired")),
            Ok(left) if left < CERT_DANGER => {
                broken.push(format!("{path} expires in {} h", left.as_secs() / 3600));
            }
            Ok(_) => {}
        }
    }
    let nearest = certs.iter().min_by_key(|(_, at)| *at);
    let held = nearest
        .map(|(path, at)| {
            let days = at.duration_since(now).unwrap_or_default().as_secs() / 86_400;
            vec![format!(
                "{} certificates; the nearest expiry is {path} in {days} days",
                certs.len()
            )]
        })
        .unwrap_or_else(|| vec!["no certificate in the PKI".into()]);
    Check {
        source: Source::Live,
        ..Check::from_findings(CERTS_FACT, None, broken, held)
    }
}

/// Vault's seal state: `None` when this home never bootstrapped one.
pub fn vault_seal(status: Option<Result<vault::VaultStatus, String>>) -> Check {
    let (verdict, evidence) = match status {
        None => (
            Verdict::NotInstalled,
            "this home has not bootstrapped Vault (`hostctl up` does, with mgmt)".to_owned(),
        ),
        Some(Ok(s)) if s.sealed => (
            Verdict::Broken,
            "Vault is sealed: `hostctl vault unseal` opens it with the key hostctl keeps"
                .to_owned(),
        ),
        Some(Ok(s)) => (Verdict::Holds, format!("Vault {} is unsealed", s.version)),
        Some(Err(e)) => (Verdict::CannotTell, format!("Vault did not answer: {e}")),
    };
    Check {
        contract: VAULT_FACT.0,
        promise: VAULT_FACT.1,
        cluster: None,
        source: Source::Live,
        verdict,
        evidence: vec![evidence],
    }
}

/// The managed mirrors' health: `None` when the topology manages none.
pub fn mirrors(health: Option<&[crate::mirrors::service::MirrorHealth]>) -> Check {
    let (verdict, evidence) = match health {
        None => (
            Verdict::NotInstalled,
            vec![
                "the topology manages no mirrors (`mirrors: {managed: true}` asks for them)".into(),
            ],
        ),
        Some(list) => {
            let line = |h: &crate::mirrors::service::MirrorHealth| {
                format!("{} {}: {}", h.name, h.url, h.state)
            };
            let sick: Vec<String> = list
                .iter()
                .filter(|h| h.state != "healthy")
                .map(line)
                .collect();
            match sick.is_empty() {
                true => (Verdict::Holds, list.iter().map(line).collect()),
                false => (Verdict::Broken, sick),
            }
        }
    };
    Check {
        contract: MIRRORS_FACT.0,
        promise: MIRRORS_FACT.1,
        cluster: None,
        source: Source::Live,
        verdict,
        evidence,
    }
}

/// The backups against the RPO, from the host's object store (what
/// `storage status` shows): not installed when the topology does not ask
/// for backups, broken when the store is down or a copy is older than the
/// RPO or cannot be read. No copy yet is not a breach (a new cluster's
/// first daily backup runs at 02:00), as for the etcd RPO fact.
pub fn backups(managed: bool, store: Option<&crate::storage::service::Status>) -> Check {
    let (verdict, evidence) = match (managed, store) {
        (false, _) => (
            Verdict::NotInstalled,
            vec!["the topology does not ask for backups (`backups: { managed: true }`)".to_owned()],
        ),
        (true, None) => (
            Verdict::Broken,
            vec!["the object store could not be read".to_owned()],
        ),
        (true, Some(s)) if s.server.is_none() => (
            Verdict::Broken,
            vec![format!(
                "the object store is {} (`hostctl storage up`)",
                s.state
            )],
        ),
        (true, Some(s)) => {
            let judged: Vec<_> = s.copies.iter().filter(|c| c.kind != "etcd").collect();
            let broken = judged
                .iter()
                .any(|c| c.state == "overdue" || c.state.starts_with("unknown"));
            let evidence = judged
                .iter()
                .map(|c| {
                    let newest = c.newest.as_deref().unwrap_or("no copy yet");
                    match c.age_secs {
                        Some(a) => format!(
                            "{} {}: {newest}, {} h old ({})",
                            c.cluster,
                            c.kind,
                            a / 3600,
                            c.state
                        ),
                        None => format!("{} {}: {newest} ({})", c.cluster, c.kind, c.state),
                    }
                })
                .collect();
            (
                if broken {
                    Verdict::Broken
                } else {
                    Verdict::Holds
                },
                evidence,
            )
        }
    };
    Check {
        contract: BACKUP_FACT.0,
        promise: BACKUP_FACT.1,
        cluster: None,
        source: Source::Live,
        verdict,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(
        server: Option<&str>,
        copies: &[(&str, &str, &str)],
    ) -> crate::storage::service::Status {
        crate::storage::service::Status {
            state: if server.is_some() {
                "running"
            } else {
                "stopped"
            }
            .into(),
            s3_url: "http://192.168.64.1:3900".into(),
            health: "healthy".into(),
            server: server.map(str::to_owned),
            copies: copies
                .iter()
                .map(|(cluster, kind, state)| crate::storage::copies::Copy {
                    cluster: (*cluster).into(),
                    kind: match *kind {
                        "velero" => "velero",
                        "vault" => "vault",
                        _ => "etcd",
                    },
                    newest: (*state != "none").then(|| "k".to_owned()),
                    age_secs: (*state != "none").then_some(3600),
                    state: (*state).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn backups_are_judged_from_the_store_and_only_when_the_topology_asks() {
        assert_eq!(backups(false, None).verdict, Verdict::NotInstalled);
        assert_eq!(backups(true, None).verdict, Verdict::Broken);
        let down = store(None, &[]);
        let check = backups(true, Some(&down));
        assert_eq!(check.verdict, Verdict::Broken);
        assert!(
            check.evidence[0].contains("storage up"),
            "{:?}",
            check.evidence
        );
        let fresh = store(
            Some("process 1"),
            &[("app1", "velero", "none"), ("mgmt", "vault", "ok")],
        );
        assert_eq!(backups(true, Some(&fresh)).verdict, Verdict::Holds);
        // An overdue etcd copy is the RPO fact's business, not this one's.
        let etcd_late = store(Some("process 1"), &[("app1", "etcd", "overdue")]);
        assert_eq!(backups(true, Some(&etcd_late)).verdict, Verdict::Holds);
        let late = store(Some("process 1"), &[("app2", "velero", "overdue")]);
        let check = backups(true, Some(&late));
        assert_eq!(check.verdict, Verdict::Broken);
        assert!(
            check.evidence[0].starts_with("app2 velero"),
            "{:?}",
            check.evidence
        );
    }

    #[test]
    fn a_certificate_inside_a_week_or_expired_breaks_and_the_nearest_is_named() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let day = Duration::from_secs(86_400);
        let certs = vec![
            ("pki/agent/host.crt".to_owned(), now + 300 * day),
            ("pki/agent/ca.crt".to_owned(), now + 3000 * day),
        ];
        let c = certificates(&certs, now);
        assert_eq!(c.verdict, Verdict::Holds);
        assert_eq!(
            c.evidence,
            ["2 certificates; the nearest expiry is pki/agent/host.crt in 300 days"]
        );
        let c = certificates(&certs, now + 297 * day);
        assert_eq!(c.verdict, Verdict::Broken);
        assert_eq!(c.evidence, ["pki/agent/host.crt expires in 72 h"]);
        let c = certificates(&certs, now + 301 * day);
        assert_eq!(c.evidence, ["pki/agent/host.crt has expired"]);
    }

    #[test]
    fn a_sealed_vault_is_broken_and_an_absent_one_not_installed() {
        let status = |sealed| vault::VaultStatus {
            initialized: true,
            sealed,
            standby: false,
            version: "2.4.0".into(),
        };
        assert_eq!(vault_seal(None).verdict, Verdict::NotInstalled);
        let sealed = vault_seal(Some(Ok(status(true))));
        assert_eq!(sealed.verdict, Verdict::Broken);
        assert!(sealed.evidence[0].contains("hostctl vault unseal"));
        assert_eq!(
            vault_seal(Some(Ok(status(false)))).evidence,
            ["Vault 2.4.0 is unsealed"]
        );
        assert_eq!(
            vault_seal(Some(Err("timed out".into()))).verdict,
            Verdict::CannotTell
        );
    }

    #[test]
    fn a_mirror_that_is_not_healthy_breaks_and_none_managed_is_not_installed() {
        use crate::mirrors::service::MirrorHealth;
        let h = |name, state: &str| MirrorHealth {
            name,
            url: format!("https://192.168.64.1/{name}"),
            state: state.into(),
            containers: 9,
            running: 9,
        };
        assert_eq!(mirrors(None).verdict, Verdict::NotInstalled);
        let ok = [h("harbor", "healthy"), h("nexus", "healthy")];
        assert_eq!(mirrors(Some(&ok)).verdict, Verdict::Holds);
        let down = [h("harbor", "stopped"), h("nexus", "healthy")];
        let c = mirrors(Some(&down));
        assert_eq!(c.verdict, Verdict::Broken);
        assert_eq!(c.evidence, ["harbor https://192.168.64.1/harbor: stopped"]);
    }

    #[test]
    fn a_built_cluster_without_a_snapshot_cannot_be_judged() {
        let home = tempfile::tempdir().expect("home");
        let store = SnapshotStore::new(home.path());
        let c = snapshots(&store, &["app1".to_owned()], SystemTime::now());
        assert_eq!(c[0].verdict, Verdict::CannotTell, "{c:#?}");
        assert_eq!(
            c[0].evidence,
            ["no etcd snapshot stored yet (`hostctl etcd snapshot app1`)"]
        );
    }
}
