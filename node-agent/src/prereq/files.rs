//! The files the steps own, rendered from the inputs, and the two things a
//! step does with them: compare (its `check`) and replace atomically (its
//! `apply`). Paths are absolute system paths taken under the node's root.

use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::inputs::AptSuite;
use super::{Inputs, PrereqError};
use crate::config::rooted;

pub const MODULES_LOAD: &str = "/etc/modules-load.d/k8s.conf";
pub const SYSCTL: &str = "/etc/sysctl.d/99-kubernetes.conf";
pub const APT_PROXY: &str = "/etc/apt/apt.conf.d/90hostctl-proxy";
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
pub const CERTS_D: &str = "/etc/containerd/certs.d";
pub const KEYRING: &str = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg";
pub const SOURCES_LIST: &str = "/etc/apt/sources.list.d/kubernetes.list";
/// The flat repository's list; with one, apt reads this list alone.
pub const APT_MIRROR_LIST: &str = "/etc/apt/sources.list.d/hostctl-mirror.list";
/// The image's deb822 sources of the Ubuntu archive (24.04 onwards),
/// replaced when the archive comes through the mirrors.
pub const UBUNTU_SOURCES: &str = "/etc/apt/sources.list.d/ubuntu.sources";
/// Where the image's own file is kept: apt's default
/// `Dir::Ignore-Files-Silently` skips `.orig`, so it is never read.
pub const UBUNTU_SOURCES_ORIG: &str = "/etc/apt/sources.list.d/ubuntu.sources.orig";
/// Ubuntu's archive keyring (package `ubuntu-keyring`, on every image):
/// a proxy serves upstream's signed `InRelease` unchanged, so the archive's
/// own key still checks it.
pub const UBUNTU_KEYRING: &str = "/usr/share/keyrings/ubuntu-archive-keyring.gpg";
/// The components of the image's `ubuntu.sources`.
pub const UBUNTU_COMPONENTS: &str = "main restricted universe multiverse";
pub const CRICTL: &str = "/etc/crictl.yaml";
pub const FSTAB: &str = "/etc/fstab";

/// The kernel modules Kubernetes networking needs (§3.2).
pub const MODULES: [&str; 2] = ["overlay", "br_netfilter"];
/// The sysctls, all set to 1 (§3.2).
pub const SYSCTLS: [&str; 3] = [
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.ip_forward",
];
/// kubeadm 1.35 pins pause 3.10.1; the sandbox image must match it.
pub const SANDBOX_IMAGE: &str = "registry.k8s.io/pause:3.10.1";
/// The registries the single `registry_mirror` stands in for, with their
/// upstream servers.
pub const MIRRORED: [(&str, &str); 2] = [
    ("docker.io", "https://registry-1.docker.io"),
    ("registry.k8s.io", "https://registry.k8s.io"),
];
/// Every registry whose `hosts.toml` this agent may have written (the
/// managed mirrors add these two): without a mirror for one, its file is
/// removed, so a node never keeps pulling through a mirror that was dropped.
pub const OWNED_REGISTRIES: [&str; 4] = ["docker.io", "registry.k8s.io", "quay.io", "ghcr.io"];

const HEADER: &str =
    "# Written by the hostctl node agent (prerequisites); changes are overwritten.\n";

/// A file a step owns: where, what, and with which mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl FileSpec {
    fn text(path: &str, body: String) -> FileSpec {
        FileSpec {
            path: path.to_owned(),
            contents: format!("{HEADER}{body}").into_bytes(),
            mode: 0o644,
        }
    }
}

pub fn modules_load() -> FileSpec {
    FileSpec::text(MODULES_LOAD, MODULES.map(|m| format!("{m}\n")).concat())
}

pub fn sysctl() -> FileSpec {
    FileSpec::text(SYSCTL, SYSCTLS.map(|s| format!("{s} = 1\n")).concat())
}

/// apt reaches both the Ubuntu archive (http) and pkgs.k8s.io (https)
/// through the proxy.
pub fn apt_proxy(url: &str) -> FileSpec {
    FileSpec::text(
        APT_PROXY,
        format!("Acquire::http::Proxy \"{url}\";\nAcquire::https::Proxy \"{url}\";\n"),
    )
}

/// containerd 1.x syntax (`version = 2`), which Ubuntu 24.04 ships and
/// containerd 2.x still reads. Registry hosts always come from `certs.d`, so
/// adding or removing a mirror only touches the `hosts.toml` files.
pub fn containerd_config() -> FileSpec {
    FileSpec::text(
        CONTAINERD_CONFIG,
        format!(
            r#"version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "{CERTS_D}"
"#
        ),
    )
}

/// `certs.d/<registry>/hosts.toml` sending pulls to the mirror first, the
/// upstream server second (containerd falls back to `server` when the
/// mirror fails). `override_path`: the mirror's URL already holds the
/// registry API path (Harbor's `/v2/<project>`), so containerd must not
/// append `/v2`; `ca`: the certificate that signed the mirror's.
pub fn hosts_toml(
    registry: &str,
    upstream: &str,
    mirror: &str,
    override_path: bool,
    ca: Option<&str>,
) -> FileSpec {
    let mut body = format!(
        "server = \"{upstream}\"\n\n[host.\"{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    );
    if override_path {
        body.push_str("  override_path = true\n");
    }
    if let Some(ca) = ca {
        body.push_str(&format!("  ca = \"{ca}\"\n"));
    }
    FileSpec::text(&hosts_toml_path(registry), body)
}

/// Where the CA of the mirror at `authority` (`host:port`) is placed: the
/// directory containerd would read for that host itself.
pub fn mirror_ca_path(authority: &str) -> String {
    format!("{CERTS_D}/{authority}/ca.crt")
}

/// The mirror's CA certificate (PEM as sent; no header, it is not a
/// configuration file).
pub fn mirror_ca(authority: &str, pem: &str) -> FileSpec {
    FileSpec {
        path: mirror_ca_path(authority),
        contents: pem.as_bytes().to_vec(),
        mode: 0o644,
    }
}

pub fn hosts_toml_path(registry: &str) -> String {
    format!("{CERTS_D}/{registry}/hosts.toml")
}

pub fn sources_list(inputs: &Inputs) -> FileSpec {
    FileSpec::text(
        SOURCES_LIST,
        format!("deb [signed-by={KEYRING}] {} /\n", inputs.repository()),
    )
}

/// A flat repository (`Packages.gz` beside the `.deb`s, no `Release`):
/// `trusted=yes` because there is no signature to check; the URL is the
/// operator's own, on the node network.
pub fn apt_mirror_list(url: &str) -> FileSpec {
    FileSpec::text(APT_MIRROR_LIST, format!("deb [trusted=yes] {url}/ ./\n"))
}

/// deb822 `ubuntu.sources`, one stanza per suite (apt's `sources.list(5)`:
/// `#` lines are comments, an empty line ends a stanza).
pub fn ubuntu_sources(suites: &[AptSuite]) -> FileSpec {
    let stanzas: Vec<String> = suites
        .iter()
        .map(|s| {
            format!(
                "Types: deb\nURIs: {}/\nSuites: {}\nComponents: {UBUNTU_COMPONENTS}\n\
                 Signed-By: {UBUNTU_KEYRING}\n",
                s.url, s.suite
            )
        })
        .collect();
    FileSpec::text(UBUNTU_SOURCES, stanzas.join("\n"))
}

/// Whether `contents` were written by this agent (they start with its
/// header), as opposed to the image's or an operator's.
pub fn is_ours(contents: &[u8]) -> bool {
    contents.starts_with(HEADER.as_bytes())
}

pub fn crictl() -> FileSpec {
    FileSpec::text(
        CRICTL,
        "runtime-endpoint: unix:///run/containerd/containerd.sock\n\
         image-endpoint: unix:///run/containerd/containerd.sock\n\
         timeout: 10\n"
            .to_owned(),
    )
}

/// `fstab` with every active swap entry commented out; `None` when there
/// is none (so an unchanged file is not rewritten).
pub fn fstab_without_swap(fstab: &str) -> Option<String> {
    let mut changed = false;
    let lines: Vec<String> = fstab
        .lines()
        .map(|line| {
            if is_swap_entry(line) {
                changed = true;
                format!("# disabled by hostctl (kubelet needs swap off): {line}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    changed.then(|| lines.join("\n") + "\n")
}

/// An uncommented fstab line whose type (third field) is `swap`.
pub fn is_swap_entry(line: &str) -> bool {
    let trimmed = line.trim_start();
    !trimmed.starts_with('#') && trimmed.split_whitespace().nth(2) == Some("swap")
}

/// Reads a file under `root`; `None` when it does not exist.
pub fn read(root: &Path, path: &str) -> Result<Option<Vec<u8>>, PrereqError> {
    let full = rooted(root, path);
    match fs::read(&full) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PrereqError::io("reading", &full)(e)),
    }
}

/// Whether anything (file or directory) exists at `path` under `root`:
/// the kernel shows a loaded module as the directory `/sys/module/<name>`,
/// which [`read`] cannot open.
pub fn exists(root: &Path, path: &str) -> Result<bool, PrereqError> {
    let full = rooted(root, path);
    full.try_exists()
        .map_err(PrereqError::io("checking", &full))
}

/// True when the file under `root` has exactly the spec's contents and mode.
pub fn matches(root: &Path, spec: &FileSpec) -> Result<bool, PrereqError> {
    let full = rooted(root, &spec.path);
    if read(root, &spec.path)?.as_deref() != Some(&spec.contents[..]) {
        return Ok(false);
    }
    let mode = fs::metadata(&full)
        .map_err(PrereqError::io("inspecting", &full))?
        .permissions()
        .mode();
    Ok(mode & 0o7777 == spec.mode)
}

/// Replaces the file under `root` atomically, creating parent directories
/// (0755, as apt expects for `/etc/apt/keyrings`).
pub fn write(root: &Path, spec: &FileSpec) -> Result<(), PrereqError> {
    let full = rooted(root, &spec.path);
    ensure_parent(&full)?;
    crate::state::write_atomic(&full, &spec.contents, spec.mode)?;
    Ok(())
}

/// Removes the file under `root` if it exists.
pub fn remove(root: &Path, path: &str) -> Result<(), PrereqError> {
    let full = rooted(root, path);
    match fs::remove_file(&full) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(PrereqError::io("removing", &full)(e)),
        _ => Ok(()),
    }
}

/// Renames `from` to `to` under `root` (same directory: atomic).
pub fn rename(root: &Path, from: &str, to: &str) -> Result<(), PrereqError> {
    let (full_from, full_to) = (rooted(root, from), rooted(root, to));
    fs::rename(&full_from, &full_to).map_err(PrereqError::io("renaming", &full_from))
}

/// True when the file under `root` does not exist.
pub fn absent(root: &Path, path: &str) -> Result<bool, PrereqError> {
    Ok(read(root, path)?.is_none())
}

fn ensure_parent(full: &Path) -> Result<PathBuf, PrereqError> {
    let dir = full.parent().unwrap_or(Path::new("/")).to_path_buf();
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dir)
        .map_err(PrereqError::io("creating directory", &dir))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn exists_sees_directories_that_read_cannot_open() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("sys/module/overlay")).unwrap();
        assert!(super::exists(root.path(), "/sys/module/overlay").unwrap());
        assert!(!super::exists(root.path(), "/sys/module/br_netfilter").unwrap());
        assert!(super::read(root.path(), "/sys/module/overlay").is_err());
    }

    use super::*;

    #[test]
    fn only_active_swap_lines_are_commented() {
        let fstab =
            "UUID=a / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n# /old none swap sw 0 0\n";
        let out = fstab_without_swap(fstab).unwrap_or_default();
        assert!(out.contains("UUID=a / ext4 defaults 0 1\n"));
        assert!(out.contains("# disabled by hostctl (kubelet needs swap off): /swap.img"));
        assert!(!out.lines().any(is_swap_entry));
        assert_eq!(
            fstab_without_swap(&out),
            None,
            "second pass changes nothing"
        );
    }
}
