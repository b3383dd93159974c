//! etcd data damage (spec §10.3, RTO 30 min): choose a snapshot — the
//! host's newest of the cluster, a named one, or one fetched from the
//! object store's `etcd` bucket when the host has none (or
//! `--from-store`) — check that it is that cluster's, restore it through
//! the control-plane agent (`etcd restore`'s path), and wait for the API
//! server. This module holds the parts that do not need a cluster: the
//! choice, the fetch and the check; `commands::recover` runs the steps.

use super::RecoverError;
use crate::snapshots::{SnapshotError, SnapshotInfo, SnapshotStore};
use crate::storage::offsite::{download_verified, etcd_key};
use crate::storage::plan::ETCD_BUCKET;
use crate::storage::s3::S3;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The record's scenario name (`recover/<cluster>-etcd.json`).
pub const SCENARIO: &str = "etcd";
/// The spec's recovery-time objective for etcd data damage.
pub const RTO: Duration = Duration::from_secs(30 * 60);
/// The largest snapshot fetched: etcd's own maximum quota (8 GiB).
pub const MAX_SNAPSHOT_BYTES: u64 = 8 << 30;
/// A metadata file is a few hundred bytes; anything big is not one.
const MAX_META_BYTES: u64 = 1 << 20;

/// The steps, in order: the record's id and the printed title.
pub const STEPS: [(&str, &str); 4] = [
    ("choose", "choose the snapshot"),
    ("check", "check it is the cluster's"),
    ("restore", "restore etcd through the control-plane agent"),
    ("api", "wait for the API server"),
];

/// Whether `asked` (a file name or a unique prefix, as `etcd restore`
/// takes) names the file `recorded`.
pub fn names(recorded: &str, asked: &str) -> bool {
    recorded == asked || recorded.starts_with(asked)
}

/// The host's snapshot of `cluster`: `name`, or the newest (by the host's
/// receipt time). `None` when the host has none (or not that one).
pub fn on_host(
    store: &SnapshotStore,
    cluster: &str,
    name: Option<&str>,
) -> Result<Option<(PathBuf, SnapshotInfo)>, RecoverError> {
    match name {
        Some(name) => match store.find(cluster, name) {
            Ok(found) => Ok(Some(found)),
            Err(SnapshotError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        },
        None => {
            let newest = store.list(cluster)?.pop();
            let dir = store.cluster_dir(cluster)?;
            Ok(newest.map(|i| (dir.join(&i.file), i)))
        }
    }
}

/// The wrong-cluster refusal: the snapshot's own metadata (`meta`, the
/// file or object it was read from) must name `cluster`. A snapshot
/// copied into the wrong directory, or a bucket object under the wrong
/// prefix, is refused before anything is restored.
pub fn check_cluster(meta: &Path, info: &SnapshotInfo, cluster: &str) -> Result<(), RecoverError> {
    if info.cluster == cluster {
        Ok(())
    } else {
        Err(RecoverError::WrongCluster {
            file: meta.to_owned(),
            cluster: cluster.to_owned(),
            claimed: info.cluster.clone(),
        })
    }
}

/// A snapshot fetched into the host's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    pub info: SnapshotInfo,
    /// The bucket object it came from.
    pub object: String,
    /// The host already had this very file (same digest): nothing written.
    pub already_on_host: bool,
}

/// The `.db` file name in the bucket that `name` asks for (exact, else a
/// unique prefix), or the newest: names are the host's receipt stamps
/// (`YYYYMMDDTHHMMSSZ-rev<N>[_NN].db`), so the greatest name is the newest.
fn pick(files: &[String], cluster: &str, name: Option<&str>) -> Result<String, RecoverError> {
    let missing = |what: String| RecoverError::NoSnapshot {
        cluster: cluster.to_owned(),
        where_: what,
        fix: format!(
            "`hostctl storage status` shows the newest copy; `hostctl etcd snapshot {cluster}` \
             takes one while the cluster still answers"
        ),
    };
    let Some(name) = name else {
        return files
            .iter()
            .max()
            .cloned()
            .ok_or_else(|| missing(format!("in the object store ({ETCD_BUCKET}/{cluster}/)")));
    };
    if let Some(exact) = files.iter().find(|f| f.as_str() == name) {
        return Ok(exact.clone());
    }
    let matching: Vec<&String> = files.iter().filter(|f| f.starts_with(name)).collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(missing(format!(
            "named {name:?} on the host or in the object store ({ETCD_BUCKET}/{cluster}/)"
        ))),
        many => Err(missing(format!(
            "uniquely named {name:?} in the object store: {} match",
            many.len()
        ))),
    }
}

/// Holds the snapshot file at `path` to etcd's rule (its last 32 bytes are
/// the SHA-256 of the rest, as `etcdutl snapshot restore` checks) and to
/// the metadata: the recorded `sha256` is that database digest (not the
/// whole file's) and `size` the whole file's. Streams the file (flat
/// memory).
async fn matches_metadata(
    path: &Path,
    object: &str,
    info: &SnapshotInfo,
) -> Result<(), RecoverError> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(fsio::Error::at("opening", path))?;
    let (mut hasher, mut buf) = (proto::snapshot::TrailerHasher::new(), vec![0u8; 256 * 1024]);
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(fsio::Error::at("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let verified = hasher.finish().map_err(|source| RecoverError::Damaged {
        object: object.to_owned(),
        source,
    })?;
    let mismatch = if verified.sha256_hex() != info.sha256 {
        Some(("its sha256", info.sha256.clone(), verified.sha256_hex()))
    } else if verified.size != info.size {
        Some(("its size", info.size.to_string(), verified.size.to_string()))
    } else {
        None
    };
    match mismatch {
        None => Ok(()),
        Some((what, expected, actual)) => Err(RecoverError::Mismatch {
            object: object.to_owned(),
            what,
            expected,
            actual,
        }),
    }
}

/// Removes `path` if it is there (a refused download's leftover).
fn discard(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Fetches `cluster`'s newest (or `name`d) snapshot from the `etcd` bucket
/// into the host's store, so it lists with `hostctl etcd list` and restores
/// like any stored snapshot. Both objects are hashed as they stream and
/// held to the digest stored with them; the `.db` is then held to etcd's
/// trailing-hash rule and to its metadata's `sha256` and `size`, and the
/// metadata to the cluster asked.
/// Anything that fails a check is deleted: nothing unchecked is left under
/// a name the store lists. The `.json` is moved in last, so a crash in
/// between leaves a `.db` the store ignores.
pub async fn fetch(
    client: &S3,
    store: &SnapshotStore,
    cluster: &str,
    name: Option<&str>,
) -> Result<Fetched, RecoverError> {
    let prefix = format!("{cluster}/");
    let files: Vec<String> = client
        .list(ETCD_BUCKET, &prefix)
        .await?
        .into_iter()
        .filter_map(|e| e.key.strip_prefix(&prefix).map(str::to_owned))
        .filter(|f| f.ends_with(".db") && !f.contains('/'))
        .collect();
    let file = pick(&files, cluster, name)?;
    let stem = file.trim_end_matches(".db");
    let (db_key, meta_key) = (
        etcd_key(cluster, &file),
        etcd_key(cluster, &format!("{stem}.json")),
    );
    let object = format!("{ETCD_BUCKET}/{db_key}");
    let dir = store.cluster_dir(cluster)?;
    std::fs::create_dir_all(&dir).map_err(fsio::Error::at("creating", &dir))?;
    let (part_meta, part_db) = (
        dir.join(format!(".{stem}.json.fetch")),
        dir.join(format!(".{file}.fetch")),
    );

    download_verified(client, ETCD_BUCKET, &meta_key, &part_meta, MAX_META_BYTES).await?;
    let info = read_info(
        &part_meta,
        &format!("{ETCD_BUCKET}/{meta_key}"),
        &file,
        cluster,
    )
    .inspect_err(|_| discard(&part_meta))?;

    let (db, meta) = (dir.join(&file), dir.join(format!("{stem}.json")));
    let already_on_host = db.exists();
    if already_on_host {
        // The store never replaces a stored snapshot: the host's file must
        // be this very snapshot.
        if matches_metadata(&db, &object, &info).await.is_err() {
            discard(&part_meta);
            return Err(RecoverError::Conflict { path: db });
        }
    } else {
        download_verified(client, ETCD_BUCKET, &db_key, &part_db, MAX_SNAPSHOT_BYTES)
            .await
            .inspect_err(|_| discard(&part_meta))?;
        if let Err(e) = matches_metadata(&part_db, &object, &info).await {
            discard(&part_db);
            discard(&part_meta);
            return Err(e);
        }
        fsio::rename(&part_db, &db)?;
    }
    fsio::rename(&part_meta, &meta)?;
    Ok(Fetched {
        path: db,
        info,
        object,
        already_on_host,
    })
}

/// The downloaded metadata at `path` (the object `object`): a
/// [`SnapshotInfo`] for `file` of `cluster`.
fn read_info(
    path: &Path,
    object: &str,
    file: &str,
    cluster: &str,
) -> Result<SnapshotInfo, RecoverError> {
    let bad = |reason: String| RecoverError::BadMetadata {
        file: object.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(fsio::Error::at("reading", path))?;
    let info: SnapshotInfo = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if info.file != file {
        return Err(bad(format!(
            "its field `file` is {:?}, the object is {file:?}",
            info.file
        )));
    }
    check_cluster(Path::new(object), &info, cluster)?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(cluster: &str, file: &str) -> SnapshotInfo {
        SnapshotInfo {
            cluster: cluster.into(),
            file: file.into(),
            node: format!("{cluster}-cp"),
            revision: 42,
            revision_exact: true,
            etcd_version: "3.6.5".into(),
            taken_at: "20261203T180000Z".into(),
            taken_at_unix: 1_796_320_800,
            sha256: "ab".repeat(32),
            size: 3,
            origin: "scheduled".into(),
        }
    }

    /// Writes a stored snapshot as the store keeps it, under `dir_cluster`'s
    /// directory but with metadata naming `meta_cluster`.
    fn plant(store: &SnapshotStore, dir_cluster: &str, meta_cluster: &str, file: &str) {
        let dir = store.cluster_dir(dir_cluster).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), b"abc").unwrap();
        std::fs::write(
            dir.join(file).with_extension("json"),
            serde_json::to_vec(&info(meta_cluster, file)).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn another_clusters_snapshot_is_refused_naming_the_file_the_field_and_the_fix() {
        let home = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(home.path());
        // mgmt's snapshot copied into app1's directory.
        plant(&store, "app1", "mgmt", "20261203T180000Z-rev42.db");
        let (path, found) = on_host(&store, "app1", None).unwrap().unwrap();
        let err = check_cluster(&path.with_extension("json"), &found, "app1").unwrap_err();
        assert!(matches!(err, RecoverError::WrongCluster { .. }), "{err}");
        let text = err.to_string();
        for part in [
            "app1/20261203T180000Z-rev42.json",
            "field `cluster` is \"mgmt\"",
            "hostctl etcd list app1",
            "hostctl recover etcd mgmt",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
        plant(&store, "app2", "app2", "20261203T180000Z-rev42.db");
        let (path, found) = on_host(&store, "app2", None).unwrap().unwrap();
        check_cluster(&path, &found, "app2").unwrap();
    }

    #[test]
    fn the_host_choice_is_the_named_snapshot_or_the_newest_or_none() {
        let home = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(home.path());
        assert_eq!(on_host(&store, "app1", None).unwrap(), None);
        plant(&store, "app1", "app1", "20261201T180000Z-rev40.db");
        // Same receipt second (no receipt time in the metadata, mtimes
        // within a second): the name breaks the tie, as the store orders.
        plant(&store, "app1", "app1", "20261203T180000Z-rev42.db");
        let newest = on_host(&store, "app1", None).unwrap().unwrap();
        assert_eq!(newest.1.file, "20261203T180000Z-rev42.db");
        let named = on_host(&store, "app1", Some("20261201")).unwrap().unwrap();
        assert_eq!(named.1.file, "20261201T180000Z-rev40.db");
        assert_eq!(on_host(&store, "app1", Some("2025")).unwrap(), None);
    }

    #[test]
    fn the_bucket_choice_is_exact_then_a_unique_prefix_then_the_newest_name() {
        let files = [
            "20261201T180000Z-rev40.db",
            "20261203T180000Z-rev42.db",
            "20261203T180000Z-rev42_02.db",
        ]
        .map(String::from);
        assert_eq!(pick(&files, "app1", None).unwrap(), files[2]);
        assert_eq!(pick(&files, "app1", Some(&files[1])).unwrap(), files[1]);
        assert_eq!(pick(&files, "app1", Some("20261201")).unwrap(), files[0]);
        let err = pick(&files, "app1", Some("20261203")).unwrap_err();
        assert!(err.to_string().contains("2 match"), "{err}");
        let err = pick(&[], "app1", None).unwrap_err();
        assert!(err.to_string().contains("etcd/app1/"), "{err}");
    }
}
