//! [`HelmCli`]: the [`Helm`] interface over the real `helm` binary.

use super::error::{HelmError, classify};
use super::{Helm, UpgradeInstall};
use async_trait::async_trait;
use std::ffi::OsString;
use std::path::PathBuf;

/// Runs `program` (default `helm` on `$PATH`, or `$HOSTCTL_HELM`).
#[derive(Debug, Clone)]
pub struct HelmCli {
    program: PathBuf,
}

impl HelmCli {
    /// A runner for the given binary.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        HelmCli {
            program: program.into(),
        }
    }

    /// `$HOSTCTL_HELM` when set, else `helm`.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("HOSTCTL_HELM").unwrap_or_else(|| "helm".into()))
    }

    /// Runs helm with `argv`; Ok(stdout) on exit 0, else the classified error.
    async fn run(
        &self,
        command: &str,
        argv: Vec<OsString>,
        chart: &str,
        version: &str,
    ) -> Result<String, HelmError> {
        let out = tokio::process::Command::new(&self.program)
            .args(&argv)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| HelmError::NotInstalled {
                program: self.program.display().to_string(),
                reason: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(classify(
            command,
            out.status.code().unwrap_or(-1),
            &stderr,
            chart,
            version,
        ))
    }
}

#[async_trait]
impl Helm for HelmCli {
    async fn version(&self) -> Result<String, HelmError> {
        let argv = vec!["version".into(), "--short".into()];
        Ok(self.run("version", argv, "", "").await?.trim().to_owned())
    }

    async fn repo_add(&self, name: &str, url: &str) -> Result<(), HelmError> {
        let argv = ["repo", "add", name, url, "--force-update"]
            .iter()
            .map(OsString::from)
            .collect();
        self.run("repo add", argv, "", "").await.map(drop)
    }

    async fn upgrade_install(&self, request: &UpgradeInstall<'_>) -> Result<String, HelmError> {
        self.run(
            "upgrade --install",
            request.argv(),
            request.chart,
            request.version,
        )
        .await
    }
}
