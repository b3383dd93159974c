//! The note a seed restore leaves for `kubeadm init`: this node's etcd
//! data directory holds a restored snapshot on purpose (the lost-node
//! recovery), so kubeadm's `DirAvailable--var-lib-etcd` preflight check,
//! which refuses a non-empty data directory to protect stray data, is
//! waived for this one init — and only while the note names the directory
//! kubeadm is about to use. A successful init removes it, so a later
//! `kubeadm reset` + init on the same node is checked as usual.
//!
//! `<root>/etc/hostctl/etcd-seeded.json`, 0600, written atomically.

use crate::config::rooted;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the note lives (under the node's root).
const NOTE: &str = "/etc/hostctl/etcd-seeded.json";

/// kubeadm's name for the check on its stacked etcd's default data
/// directory.
pub const PREFLIGHT_CHECK: &str = "DirAvailable--var-lib-etcd";

/// kubeadm's name for the check on etcd data directory `data_dir`
/// (`DirAvailable-` + the path with `/` as `-`).
pub fn preflight_check(data_dir: &str) -> String {
    format!("DirAvailable-{}", data_dir.replace('/', "-"))
}

/// What the seed restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeded {
    /// The data directory as kubeadm sees it (e.g. `/var/lib/etcd`).
    pub data_dir: String,
    /// The snapshot's revision.
    pub revision: i64,
    /// The snapshot's cluster.
    pub cluster: String,
}

fn path(root: &Path) -> PathBuf {
    rooted(root, NOTE)
}

/// Leaves the note (after the restore succeeded).
pub fn mark(root: &Path, seeded: &Seeded) -> Result<(), fsio::Error> {
    let path = path(root);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fsio::Error::at("creating", dir))?;
    }
    let body = fsio::json_document(seeded)
        .map_err(|e| fsio::Error::at("encoding", &path)(std::io::Error::other(e)))?;
    fsio::write_atomic(&path, &body, 0o600)
}

/// The note, if a seed left one that still parses (a damaged note is no
/// waiver: kubeadm then checks as usual and says why).
pub fn read(root: &Path) -> Option<Seeded> {
    let bytes = std::fs::read(path(root)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The preflight checks `kubeadm init` may skip on this node: kubeadm's
/// check on the data directory a seed's note names.
pub fn waived_checks(root: &Path) -> Vec<String> {
    read(root)
        .map(|s| vec![preflight_check(&s.data_dir)])
        .unwrap_or_default()
}

/// Removes the note (after a successful init); a missing note is fine.
pub fn clear(root: &Path) -> Result<(), fsio::Error> {
    let path = path(root);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(fsio::Error::at("removing", &path)(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiver_names_the_noted_data_dir_and_goes_with_the_note() {
        let root = tempfile::tempdir().unwrap();
        assert!(waived_checks(root.path()).is_empty());
        let seeded = Seeded {
            data_dir: "/var/lib/etcd".into(),
            revision: 7,
            cluster: "app1".into(),
        };
        mark(root.path(), &seeded).unwrap();
        assert_eq!(read(root.path()), Some(seeded.clone()));
        assert_eq!(waived_checks(root.path()), vec![PREFLIGHT_CHECK]);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path(root.path())).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        mark(
            root.path(),
            &Seeded {
                data_dir: "/srv/etcd".into(),
                ..seeded
            },
        )
        .unwrap();
        assert_eq!(waived_checks(root.path()), vec!["DirAvailable--srv-etcd"]);

        clear(root.path()).unwrap();
        clear(root.path()).unwrap();
        assert_eq!(read(root.path()), None);
    }

    #[test]
    fn a_damaged_note_waives_nothing() {
        let root = tempfile::tempdir().unwrap();
        let p = path(root.path());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"{not json").unwrap();
        assert!(waived_checks(root.path()).is_empty());
    }
}
