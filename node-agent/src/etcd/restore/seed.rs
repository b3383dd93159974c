//! A restore onto a control-plane node kubeadm has not initialised (the
//! start message's `seed`): the lost-node recovery recreates the machine
//! and puts the cluster's etcd data in place *before* `kubeadm init`,
//! kubeadm's documented route (restore into the data directory, then
//! `kubeadm init --ignore-preflight-errors=DirAvailable--var-lib-etcd`).
//!
//! 1. `restore/check`: confirmed and of this node's cluster (as a plain
//!    restore); the seed's fields are usable; no `etcd.yaml` exists — a
//!    node kubeadm initialised has an etcd whose data a plain restore
//!    replaces properly.
//! 2. `restore/receive`: staged next to the data directory, verified.
//! 3. `restore/pull`: the seed's image, whose `etcdutl` writes the data
//!    (so the etcd version that opens the data wrote it).
//! 4. `restore/etcdutl`: whatever the data directory holds is moved to
//!    `<data_dir>-replaced-<stamp>` (never deleted), then `etcdutl` restores
//!    into the data directory itself, which it requires not to exist.
//!
//! Nothing runs yet, so there is nothing to stop, start or verify.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use proto::v1::{EtcdSeed, SnapshotMeta};

use super::runtime::RestoreCommand;
use super::{Inbound, MANIFESTS, Progress, RestoreError, Restorer, announce, now_stamp};
use crate::config::rooted;
use crate::etcd::EtcdError;

impl Restorer {
    /// The seed path of [`Restorer::run`], after the start message's
    /// common checks; returns the final message.
    pub(super) async fn seed(
        &self,
        mut inbound: Inbound,
        meta: &SnapshotMeta,
        seed: &EtcdSeed,
        progress: &Progress,
        phase: &mut &'static str,
        rollback: &mut String,
    ) -> Result<String, RestoreError> {
        let dir = validate(seed)?;
        let etcd_yaml = rooted(&self.root, MANIFESTS).join("etcd.yaml");
        if exists(&etcd_yaml).await? {
            return Err(RestoreError::Refused(format!(
                "{} exists: kubeadm already initialised this node; a plain restore (without seed) \
                 replaces a running etcd's data",
                etcd_yaml.display()
            )));
        }
        announce(progress, phase, meta).await;
        let stamp = now_stamp();
        let data_dir = rooted(&self.root, &dir);

        *phase = "restore/receive";
        let staged = self
            .stage(&mut inbound, &data_dir, &stamp, progress, phase, 30.0)
            .await?;

        *phase = "restore/pull";
        self.runtime.pull(&seed.image).await?;
        progress
            .step(phase, format!("image {} is present", seed.image), 50.0)
            .await;

        *phase = "restore/etcdutl";
        let replaced = format!("{dir}-replaced-{stamp}");
        let moved = make_room(&data_dir, &rooted(&self.root, &replaced)).await?;
        *rollback = if moved {
            format!(
                "the data that was in {dir} is kept in {replaced}: to undo, remove what the \
                 failed restore left in {dir} and move {replaced} back to {dir}"
            )
        } else {
            format!("{dir} held no data before this restore")
        };
        if moved {
            progress
                .step(phase, format!("moved what {dir} held to {replaced}"), 60.0)
                .await;
        }
        let command = RestoreCommand {
            snapshot: staged.0.clone(),
            data_dir,
            name: seed.name.clone(),
            initial_cluster: seed.initial_cluster.clone(),
            peer_urls: seed.peer_urls.clone(),
            image: seed.image.clone(),
        };
        self.runtime.restore(&command).await?;
        // kubeadm init reads this to waive its data-directory check.
        crate::etcd::seeded::mark(
            &self.root,
            &crate::etcd::seeded::Seeded {
                data_dir: dir.clone(),
                revision: meta.revision,
                cluster: meta.cluster.clone(),
            },
        )
        .map_err(EtcdError::Io)?;
        progress
            .step(
                phase,
                format!("restored member {} into {dir}", seed.name),
                90.0,
            )
            .await;
        let kept = if moved {
            format!("; what it held before is kept in {replaced}")
        } else {
            String::new()
        };
        Ok(format!(
            "etcd data of revision {} restored into {dir}{kept}. kubeadm init may run now with \
             --ignore-preflight-errors={}",
            meta.revision,
            crate::etcd::seeded::preflight_check(&dir)
        ))
    }
}

/// Checks the seed's fields before anything is received; returns the data
/// directory normalised (`/var/lib/etcd/` → `/var/lib/etcd`, so the aside
/// name is a sibling, not a child).
fn validate(seed: &EtcdSeed) -> Result<String, RestoreError> {
    let bad = |what: String| Err(RestoreError::Seed(what));
    let dir = Path::new(&seed.data_dir);
    if !dir.is_absolute() {
        return bad(format!(
            "data_dir {:?} is not an absolute path",
            seed.data_dir
        ));
    }
    // `..` would leave the agent's root; `/` itself cannot be moved aside.
    if dir.components().any(|c| c == Component::ParentDir) || dir.parent().is_none() {
        return bad(format!(
            "data_dir {:?} must name a directory below / without `..`",
            seed.data_dir
        ));
    }
    for (field, value) in [
        ("name", &seed.name),
        ("peer_urls", &seed.peer_urls),
        ("image", &seed.image),
    ] {
        if value.trim().is_empty() {
            return bad(format!("{field} is empty"));
        }
    }
    let member = format!("{}=", seed.name);
    if !seed
        .initial_cluster
        .split(',')
        .any(|m| m.trim().starts_with(&member))
    {
        return bad(format!(
            "initial_cluster {:?} has no member {member}<peer URL>",
            seed.initial_cluster
        ));
    }
    let normal: PathBuf = dir.components().collect();
    Ok(normal.display().to_string())
}

async fn exists(path: &Path) -> Result<bool, RestoreError> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(EtcdError::io("reading", path)(e).into()),
    }
}

/// Makes `dir` not exist, as etcdutl requires, without losing anything: an
/// empty directory is removed (it holds nothing; a node's image or an
/// earlier `mkdir` may have created it), anything else is renamed to
/// `aside`, which must not exist. Returns whether something was moved.
async fn make_room(dir: &Path, aside: &Path) -> Result<bool, RestoreError> {
    match tokio::fs::symlink_metadata(dir).await {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(EtcdError::io("reading", dir)(e).into()),
        Ok(m) if m.is_dir() => match tokio::fs::remove_dir(dir).await {
            Ok(()) => return Ok(false),
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {}
            Err(e) => return Err(EtcdError::io("removing the empty", dir)(e).into()),
        },
        Ok(_) => {}
    }
    // rename(2) would replace an existing file or empty directory there.
    if exists(aside).await? {
        return Err(RestoreError::Refused(format!(
            "{} holds data and {} already exists; move one of them away",
            dir.display(),
            aside.display()
        )));
    }
    fsio::nonblocking::rename(dir, aside)
        .await
        .map_err(|e| EtcdError::from(e).into())
        .map(|()| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One way to spoil a seed.
    type SeedChange = fn(&mut EtcdSeed);

    fn seed() -> EtcdSeed {
        EtcdSeed {
            data_dir: "/var/lib/etcd".into(),
            name: "app1-cp".into(),
            initial_cluster: "app1-cp=https://10.0.0.10:2380".into(),
            peer_urls: "https://10.0.0.10:2380".into(),
            image: "registry.k8s.io/etcd:3.6.5-0".into(),
        }
    }

    #[test]
    fn a_kubeadm_seed_is_valid_and_names_its_preflight_check() {
        assert_eq!(validate(&seed()).ok().as_deref(), Some("/var/lib/etcd"));
        let mut trailing = seed();
        trailing.data_dir = "/var//lib/etcd/".into();
        assert_eq!(validate(&trailing).ok().as_deref(), Some("/var/lib/etcd"));
        assert_eq!(
            crate::etcd::seeded::preflight_check("/var/lib/etcd"),
            "DirAvailable--var-lib-etcd"
        );
    }

    #[test]
    fn unusable_seeds_say_which_field() {
        let cases: [(SeedChange, &str); 7] = [
            (|s| s.data_dir = "var/lib/etcd".into(), "absolute"),
            (|s| s.data_dir = "/var/lib/../../etc".into(), ".."),
            (|s| s.data_dir = "/".into(), "below /"),
            (|s| s.name = String::new(), "name is empty"),
            (|s| s.image = " ".into(), "image is empty"),
            (|s| s.peer_urls = String::new(), "peer_urls is empty"),
            (
                |s| s.initial_cluster = "xapp1-cp=https://10.0.0.10:2380".into(),
                "no member app1-cp=",
            ),
        ];
        for (change, says) in cases {
            let mut s = seed();
            change(&mut s);
            let err = validate(&s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(says), "{says}: {err:?}");
        }
    }

    #[tokio::test]
    async fn room_is_made_by_moving_data_aside_and_removing_only_empty_dirs()
    -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let (dir, aside) = (root.path().join("etcd"), root.path().join("etcd-replaced"));
        assert!(!make_room(&dir, &aside).await?, "nothing there");
        std::fs::create_dir(&dir)?;
        assert!(!make_room(&dir, &aside).await?, "an empty directory");
        assert!(!dir.exists() && !aside.exists());
        std::fs::create_dir_all(dir.join("member"))?;
        assert!(make_room(&dir, &aside).await?);
        assert!(!dir.exists() && aside.join("member").is_dir());
        std::fs::create_dir_all(dir.join("member"))?;
        let err = make_room(&dir, &aside).await.err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("already exists")));
        assert!(dir.join("member").is_dir() && aside.join("member").is_dir());
        Ok(())
    }
}
