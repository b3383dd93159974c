//! [`HelmCli`]: the [`Helm`] interface over the real `helm` binary.

use super::error::{HelmError, classify};
use super::{Helm, UpgradeInstall};
use crate::exec::{self, Cmd, Runner};
use async_trait::async_trait;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

/// Runs `program` (default `helm` on `$PATH`, or `$HOSTCTL_HELM`).
#[derive(Debug, Clone)]
pub struct HelmCli {
    program: PathBuf,
    runner: Arc<dyn Runner>,
}

impl HelmCli {
    /// A runner for the given binary.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self::with_runner(program, exec::real())
    }

    /// The given binary, run by `runner` (tests record the calls instead).
    pub fn with_runner(program: impl Into<PathBuf>, runner: Arc<dyn Runner>) -> Self {
        HelmCli {
            program: program.into(),
            runner,
        }
    }

    /// `$HOSTCTL_HELM` when set, else `helm`.
    pub fn from_env() -> Self {
        Self::new(
            crate::environment::HELM
                .os()
                .unwrap_or_else(|| "helm".into()),
        )
    }

    /// Runs helm with `argv`; Ok(stdout) on exit 0, else the classified error.
    async fn run(
        &self,
        command: &str,
        argv: Vec<OsString>,
        chart: &str,
        version: &str,
    ) -> Result<String, HelmError> {
        let cmd = Cmd::new(&self.program).args(argv);
        let out = self
            .runner
            .output(&cmd)
            .await
            .map_err(|source| HelmError::NotInstalled {
                program: self.program.display().to_string(),
                source,
            })?;
        if out.success() {
            return Ok(out.stdout_text());
        }
        Err(classify(
            command,
            out.code().unwrap_or(-1),
            &out.stderr_text(),
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
