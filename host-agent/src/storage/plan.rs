//! What the store holds for a topology: which buckets, which keys, and
//! which key may touch which bucket.
//!
//! One Velero bucket *per cluster*, each with that cluster's own key and
//! no other: Garage grants keys per bucket, so a cluster that is broken
//! into can read and overwrite its own backups but never another
//! cluster's (issue 20's "refusal of another cluster's key"). The etcd and
//! Vault snapshots are the host's, uploaded with the host's key only.

/// The bucket of the etcd snapshots (`<cluster>/<file>`).
pub const ETCD_BUCKET: &str = "etcd";
/// The bucket of Vault's raft snapshots.
pub const VAULT_BUCKET: &str = "vault";
/// The host's own key (etcd and Vault snapshots).
pub const HOST_KEY: &str = "hostctl";

/// A cluster's Velero bucket.
pub fn velero_bucket(cluster: &str) -> String {
    format!("velero-{cluster}")
}

/// The key a cluster's Velero signs with.
pub fn velero_key(cluster: &str) -> String {
    format!("velero-{cluster}")
}

/// A cluster's backup target as review renderings show it (`hostctl
/// render`, `verify`): the real location, placeholder credentials — the
/// key is only read from the store when `up` installs.
pub fn review_target(
    resolved: &topology::Resolved,
    cluster: &str,
) -> Option<crate::addons::velero::BackupTarget> {
    resolved
        .topology()
        .managed_backups()
        .then(|| crate::addons::velero::BackupTarget {
            s3_url: format!(
                "http://{}:{}",
                resolved.host_agent_address(),
                super::S3_PORT
            ),
            region: super::config::REGION.to_owned(),
            bucket: velero_bucket(cluster),
            prefix: cluster.to_owned(),
            access_key_id: "<velero-access-key-id>".to_owned(),
            secret_access_key: vault::Secret::new("<velero-secret-access-key>"),
            repository_password: vault::Secret::new("<velero-repository-password>"),
            access: crate::addons::velero::AccessMode::ReadWrite,
        })
}

/// One grant: `key` may read and write `bucket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub bucket: String,
    pub key: String,
}

/// Every bucket and grant for these clusters, in a stable order.
pub fn grants(clusters: &[String]) -> Vec<Grant> {
    let host = |bucket: &str| Grant {
        bucket: bucket.to_owned(),
        key: HOST_KEY.to_owned(),
    };
    let mut out = vec![host(ETCD_BUCKET), host(VAULT_BUCKET)];
    out.extend(clusters.iter().map(|c| Grant {
        bucket: velero_bucket(c),
        key: velero_key(c),
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cluster_has_its_own_bucket_and_key_and_none_shares_the_hosts() {
        let clusters = ["mgmt", "app1"].map(String::from);
        let grants = grants(&clusters);
        let pairs: Vec<_> = grants
            .iter()
            .map(|g| (g.bucket.as_str(), g.key.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("etcd", "hostctl"),
                ("vault", "hostctl"),
                ("velero-mgmt", "velero-mgmt"),
                ("velero-app1", "velero-app1"),
            ]
        );
    }
}
