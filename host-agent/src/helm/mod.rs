//! The Helm CLI behind a narrow interface (the spec forbids Helmfile and
//! asks for the real `helm`): hostctl builds argv, never a shell string,
//! and reads only helm's exit code and its `Error:` line. [`HelmCli`] runs
//! the binary; tests run it against `tests/fixtures/helm-standin`.

mod cli;
mod error;

pub use cli::HelmCli;
pub use error::{HelmError, classify};

use async_trait::async_trait;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How helm reaches an OCI registry: `--ca-file` for a registry whose
/// certificate the system does not trust (a lab Harbor's own CA),
/// `--plain-http` for one served over http://. Empty for public sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryTls {
    pub ca_file: Option<PathBuf>,
    pub plain_http: bool,
    /// A registry config (docker `config.json` format, 0600) holding the
    /// registry's credentials (`--registry-config`), so no password is on
    /// argv: hostctl's Harbor takes pushes from its admin only.
    pub registry_config: Option<PathBuf>,
}

impl RegistryTls {
    /// The flags (`pull`, `push`, `upgrade` and `show` all take them).
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = Vec::new();
        if let Some(ca) = &self.ca_file {
            argv.push("--ca-file".into());
            argv.push(ca.into());
        }
        if self.plain_http {
            argv.push("--plain-http".into());
        }
        if let Some(config) = &self.registry_config {
            argv.push("--registry-config".into());
            argv.push(config.into());
        }
        argv
    }
}

/// One `helm pull`: a chart archive `<name>-<version>.tgz` into
/// `destination`. For a classic repository, `chart` is the chart's name and
/// `repo` its URL (`--repo`, so no `helm repo add` is needed); for OCI,
/// `chart` is `oci://…/<name>` and `repo` is `None`.
#[derive(Debug, Clone)]
pub struct Pull<'a> {
    pub chart: &'a str,
    pub repo: Option<&'a str>,
    pub version: &'a str,
    pub destination: &'a Path,
    pub registry: &'a RegistryTls,
}

impl Pull<'_> {
    /// The argument vector after the program name.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec!["pull".into(), self.chart.into()];
        if let Some(repo) = self.repo {
            argv.push("--repo".into());
            argv.push(repo.into());
        }
        argv.push("--version".into());
        argv.push(self.version.into());
        argv.push("--destination".into());
        argv.push(self.destination.into());
        argv.extend(self.registry.argv());
        argv
    }
}

/// One `helm upgrade --install`: idempotent, so a re-run of `up` upgrades
/// in place instead of failing on "cannot re-use a name".
#[derive(Debug, Clone)]
pub struct UpgradeInstall<'a> {
    pub release: &'a str,
    /// What helm installs: a chart archive's path, `oci://…/<name>`, or
    /// `repo/chart` (see [`crate::charts::ChartSource`]).
    pub chart: &'a str,
    /// Always pinned (see [`crate::charts::pinned`]). Helm ignores it for
    /// an archive path (the archive is the version); it is passed anyway so
    /// every install names its version.
    pub version: &'a str,
    /// How to reach the registry when `chart` is `oci://…`.
    pub registry: &'a RegistryTls,
    pub namespace: &'a str,
    pub values_file: &'a Path,
    /// Never the user's kubeconfig: the host's minted one, in a 0600 file.
    pub kubeconfig_file: &'a Path,
    /// `--wait`: return only when the release's workloads are ready.
    pub wait: bool,
    pub timeout: Duration,
}

impl UpgradeInstall<'_> {
    /// The argument vector after the program name.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = [
            "upgrade",
            "--install",
            self.release,
            self.chart,
            "--version",
            self.version,
            "--namespace",
            self.namespace,
        ]
        .iter()
        .map(OsString::from)
        .collect();
        argv.push("-f".into());
        argv.push(self.values_file.into());
        argv.push("--kubeconfig".into());
        argv.push(self.kubeconfig_file.into());
        if self.wait {
            argv.push("--wait".into());
        }
        argv.push("--timeout".into());
        argv.push(format!("{}s", self.timeout.as_secs()).into());
        argv.extend(self.registry.argv());
        argv
    }
}

/// What hostctl needs from Helm, and nothing more.
#[async_trait]
pub trait Helm: Send + Sync {
    /// `helm version --short`, e.g. `v3.19.0+g3d8990f`; fails with
    /// [`HelmError::NotInstalled`] when there is no helm.
    async fn version(&self) -> Result<String, HelmError>;
    /// Runs the upgrade/install; returns helm's stdout (release notes).
    async fn upgrade_install(&self, request: &UpgradeInstall<'_>) -> Result<String, HelmError>;
    /// `helm pull`: downloads the chart archive into the request's
    /// destination.
    async fn pull(&self, request: &Pull<'_>) -> Result<(), HelmError>;
    /// `helm push ARCHIVE REMOTE` (`remote` is `oci://host/path`; helm
    /// appends the chart's name and version); returns the manifest digest
    /// helm prints (`Digest: sha256:…`, on stdout or stderr).
    async fn push(
        &self,
        archive: &Path,
        remote: &str,
        registry: &RegistryTls,
    ) -> Result<String, HelmError>;
}

/// A temporary file readable only by the user, holding `contents`, removed
/// when dropped: for helm's `--kubeconfig` and `-f` (keys in both).
pub fn private_file(what: &str, contents: &str) -> Result<tempfile::NamedTempFile, HelmError> {
    let io = |source| HelmError::TempFile {
        what: what.to_owned(),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix(&format!("hostctl-{what}-"))
        .suffix(".yaml")
        .tempfile()
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(file)
}
