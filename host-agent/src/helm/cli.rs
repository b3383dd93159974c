//! [`HelmCli`]: the [`Helm`] interface over the real `helm` binary.

use super::error::{HelmError, classify};
use super::{Helm, Pull, RegistryTls, UpgradeInstall};
use crate::exec::{self, Cmd, Runner};
use async_trait::async_trait;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
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
        self.run_both(command, argv, chart, version)
            .await
            .map(|(stdout, _)| stdout)
    }

    /// [`Self::run`], returning stdout and stderr.
    async fn run_both(
        &self,
        command: &str,
        argv: Vec<OsString>,
        chart: &str,
        version: &str,
    ) -> Result<(String, String), HelmError> {
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
            return Ok((out.stdout_text(), out.stderr_text()));
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

    async fn upgrade_install(&self, request: &UpgradeInstall<'_>) -> Result<String, HelmError> {
        self.run(
            "upgrade --install",
            request.argv(),
            request.chart,
            request.version,
        )
        .await
    }

    async fn pull(&self, request: &Pull<'_>) -> Result<(), HelmError> {
        self.run("pull", request.argv(), request.chart, request.version)
            .await
            .map(drop)
    }

    async fn push(
        &self,
        archive: &Path,
        remote: &str,
        registry: &RegistryTls,
    ) -> Result<String, HelmError> {
        let mut argv: Vec<OsString> = vec!["push".into(), archive.into(), remote.into()];
        argv.extend(registry.argv());
        // Helm 4 prints `Pushed:`/`Digest:` on stderr; either stream is read.
        let (stdout, stderr) = self.run_both("push", argv, "", "").await?;
        let out = format!("{stdout}\n{stderr}");
        push_digest(&out).ok_or_else(|| HelmError::Failed {
            command: "push".to_owned(),
            code: 0,
            message: format!("helm printed no `Digest:` line: {}", out.trim()),
        })
    }
}

/// The `Digest: sha256:…` line of `helm push` (helm 3.8+ and 4 print
/// `Pushed: REF` then `Digest: DIGEST`; helm 4.1 on stderr).
fn push_digest(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Digest: "))
        .map(|d| d.trim().to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_of_a_push() {
        let out = "Pushed: 127.0.0.1:5055/hostctl-charts/demo:0.1.0\nDigest: sha256:d74d51\n";
        assert_eq!(super::push_digest(out).as_deref(), Some("sha256:d74d51"));
        assert_eq!(super::push_digest("Pushed: x\n"), None);
    }
}
