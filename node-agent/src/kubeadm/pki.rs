//! The files the host sends for kubeadm (the cluster's CA set and the
//! admission configuration) and the rendered kubeadm configuration, placed
//! under the node's root with kubeadm's own modes.
//!
//! Only paths below `/etc/kubernetes/pki/` and `/etc/kubernetes/admission/`
//! are accepted: a `PlacedFile` comes over the network, and a path that
//! could name `/etc/sudoers` or climb out with `..` must be refused before
//! anything is written. Modes follow kubeadm (client-go `keyutil.WriteKey`
//! and `certutil.WriteCert`): directories 0755, private keys 0600,
//! everything else at most 0644.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use proto::v1::PlacedFile;

use super::KubeadmError;
use crate::config::rooted;
use crate::state::write_atomic;

/// kubeadm's configuration directory; `PlacedFile` paths are relative to it.
pub const KUBERNETES_DIR: &str = "/etc/kubernetes";
/// The subdirectories of [`KUBERNETES_DIR`] the host may write into.
pub const ALLOWED_DIRS: &[&str] = &["pki", "admission"];
/// Where the rendered kubeadm configuration is written (0600: an
/// InitConfiguration carries the bootstrap token).
pub const CONFIG_PATH: &str = "/etc/hostctl/kubeadm.yaml";
/// Mode of directories created for placed files (kubeadm's).
pub const DIR_MODE: u32 = 0o755;
/// Mode of private keys.
pub const KEY_MODE: u32 = 0o600;
/// The most a certificate or other placed file may be opened up to.
pub const MAX_FILE_MODE: u32 = 0o644;

/// `path` (relative to `/etc/kubernetes`) if it stays inside an allowed
/// directory: plain components only, no `..`, not absolute.
pub fn checked_relative(path: &str) -> Result<PathBuf, KubeadmError> {
    let refuse = |why: &str| KubeadmError::BadPath {
        path: path.to_owned(),
        reason: why.to_owned(),
    };
    let p = Path::new(path);
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("must not contain `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("must be relative to /etc/kubernetes"));
            }
        }
    }
    let allowed = parts
        .first()
        .is_some_and(|d| ALLOWED_DIRS.iter().any(|a| d.to_str() == Some(a)));
    if !allowed || parts.len() < 2 {
        return Err(refuse(&format!(
            "must be a file under one of {}",
            ALLOWED_DIRS
                .iter()
                .map(|d| format!("{d}/"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(parts.iter().collect())
}

/// The mode a placed file gets: private keys 0600 whatever was asked,
/// anything else the requested mode without execute or group/other write.
pub fn file_mode(relative: &Path, requested: u32) -> u32 {
    if relative.extension().is_some_and(|e| e == "key") {
        KEY_MODE
    } else if requested == 0 {
        MAX_FILE_MODE
    } else {
        requested & MAX_FILE_MODE
    }
}

/// Places every file under `<root>/etc/kubernetes`, all paths checked
/// before the first write. Returns the absolute paths written.
pub fn place(root: &Path, files: &[PlacedFile]) -> Result<Vec<PathBuf>, KubeadmError> {
    let checked = files
        .iter()
        .map(|f| checked_relative(&f.path).map(|p| (p, f)))
        .collect::<Result<Vec<_>, _>>()?;
    let base = rooted(root, KUBERNETES_DIR);
    let mut written = Vec::with_capacity(checked.len());
    for (relative, file) in checked {
        let target = base.join(&relative);
        if let Some(dir) = target.parent() {
            create_dirs(&base, dir)?;
        }
        write_atomic(&target, &file.contents, file_mode(&relative, file.mode))?;
        written.push(target);
    }
    Ok(written)
}

/// Creates `dir` (inside `base`) and its missing parents with kubeadm's
/// directory mode.
fn create_dirs(base: &Path, dir: &Path) -> Result<(), KubeadmError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(KubeadmError::io("creating directory", dir))?;
    let mut d = Some(dir);
    while let Some(cur) = d.filter(|c| c.starts_with(base)) {
        fs::set_permissions(cur, fs::Permissions::from_mode(DIR_MODE))
            .map_err(KubeadmError::io("setting mode of", cur))?;
        d = cur.parent();
    }
    Ok(())
}

/// Writes the kubeadm configuration to `<root>/etc/hostctl/kubeadm.yaml`
/// (0600) and returns its path.
pub fn write_config(root: &Path, yaml: &str) -> Result<PathBuf, KubeadmError> {
    let path = rooted(root, CONFIG_PATH);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(KubeadmError::io("creating directory", dir))?;
    }
    write_atomic(&path, yaml.as_bytes(), KEY_MODE)?;
    Ok(path)
}

/// Removes what [`place`] and [`write_config`] may have left after
/// `kubeadm reset` (which keeps the CA set and the admission directory):
/// the `pki` and `admission` trees and the configuration. Missing files are
/// fine.
pub fn remove_placed(root: &Path) -> Result<(), KubeadmError> {
    let base = rooted(root, KUBERNETES_DIR);
    for dir in ALLOWED_DIRS {
        let d = base.join(dir);
        match fs::remove_dir_all(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(KubeadmError::io("removing", &d)(e)),
        }
    }
    let config = rooted(root, CONFIG_PATH);
    match fs::remove_file(&config) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(KubeadmError::io("removing", &config)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pki_and_admission_paths_are_accepted() {
        for ok in [
            "pki/ca.crt",
            "pki/etcd/ca.key",
            "./pki/sa.pub",
            "admission/a.yaml",
        ] {
            assert!(checked_relative(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/etc/kubernetes/pki/ca.crt",
            "pki/../admin.conf",
            "../hostctl/node-agent.yaml",
            "manifests/etcd.yaml",
            "pki",
            "",
            "admin.conf",
        ] {
            assert!(
                matches!(checked_relative(bad), Err(KubeadmError::BadPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn modes_follow_kubeadm() {
        assert_eq!(file_mode(Path::new("pki/ca.key"), 0o644), 0o600);
        assert_eq!(file_mode(Path::new("pki/ca.crt"), 0o777), 0o644);
        assert_eq!(file_mode(Path::new("pki/ca.crt"), 0o640), 0o640);
        assert_eq!(file_mode(Path::new("pki/sa.pub"), 0), 0o644);
    }
}
