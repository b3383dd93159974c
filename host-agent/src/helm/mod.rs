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
use std::path::Path;
use std::time::Duration;

/// One `helm upgrade --install`: idempotent, so a re-run of `up` upgrades
/// in place instead of failing on "cannot re-use a name".
#[derive(Debug, Clone)]
pub struct UpgradeInstall<'a> {
    pub release: &'a str,
    /// `repo/chart`, e.g. `cilium/cilium`.
    pub chart: &'a str,
    /// Always pinned (see [`crate::cluster_config::versions`]).
    pub version: &'a str,
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
        argv
    }
}

/// What hostctl needs from Helm, and nothing more.
#[async_trait]
pub trait Helm: Send + Sync {
    /// `helm version --short`, e.g. `v3.19.0+g3d8990f`; fails with
    /// [`HelmError::NotInstalled`] when there is no helm.
    async fn version(&self) -> Result<String, HelmError>;
    /// `helm repo add NAME URL --force-update` (idempotent).
    async fn repo_add(&self, name: &str, url: &str) -> Result<(), HelmError>;
    /// Runs the upgrade/install; returns helm's stdout (release notes).
    async fn upgrade_install(&self, request: &UpgradeInstall<'_>) -> Result<String, HelmError>;
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
