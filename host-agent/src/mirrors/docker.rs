//! The host's Docker behind one narrow interface ([`Docker`]), driven in
//! production through the real CLI (`docker`, `docker compose`) via
//! [`crate::exec`]. Tests put a stand-in behind the trait; nothing else in
//! hostctl talks to Docker.

use super::error::MirrorError;
use crate::exec::{Cmd, Runner};
use async_trait::async_trait;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One container of a compose project, as `docker compose ps` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Container {
    #[serde(rename = "Service")]
    pub service: String,
    /// `running`, `exited`, `restarting`, …
    #[serde(rename = "State")]
    pub state: String,
    /// `healthy`, `starting`, `unhealthy` or empty without a healthcheck.
    #[serde(rename = "Health", default)]
    pub health: String,
}

/// Why Docker cannot be used: what `doctor` and `status` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// The engine answers; its version.
    Running(String),
    /// No `docker` program.
    Missing,
    /// The CLI is there, the engine does not answer (Docker Desktop stopped).
    Stopped(String),
}

/// What hostctl asks of Docker.
#[async_trait]
pub trait Docker: Send + Sync {
    /// `docker version --format {{.Server.Version}}`.
    async fn availability(&self) -> Availability;
    /// `docker compose -p P -f F up -d --remove-orphans`: creates what is
    /// missing, recreates what changed, leaves the rest running.
    async fn compose_up(&self, project: &str, file: &Path) -> Result<(), MirrorError>;
    /// `docker compose -p P -f F up -d --remove-orphans --force-recreate`:
    /// every service anew, so it reads configuration regenerated since.
    async fn compose_recreate(&self, project: &str, file: &Path) -> Result<(), MirrorError>;
    /// `docker compose -p P -f F down --remove-orphans`: removes the
    /// containers and the project's network; bind-mounted data stays.
    async fn compose_down(&self, project: &str, file: &Path) -> Result<(), MirrorError>;
    /// `docker compose -p P -f F ps --all --format json`.
    async fn compose_ps(&self, project: &str, file: &Path) -> Result<Vec<Container>, MirrorError>;
    /// `docker run --rm <args…>` (Harbor's `prepare`).
    async fn run_once(&self, args: &[String]) -> Result<(), MirrorError>;
}

/// The real CLI.
#[derive(Debug, Clone)]
pub struct DockerCli {
    program: PathBuf,
    runner: Arc<dyn Runner>,
}

/// Pulling Harbor's images under emulation can take long.
const COMPOSE_DEADLINE: Duration = Duration::from_secs(1800);
const QUERY_DEADLINE: Duration = Duration::from_secs(30);

impl DockerCli {
    pub fn new(runner: Arc<dyn Runner>) -> DockerCli {
        DockerCli {
            program: crate::exec::find_program("docker").unwrap_or_else(|| PathBuf::from("docker")),
            runner,
        }
    }

    fn compose(project: &str, file: &Path, rest: &[&str]) -> Vec<String> {
        let mut args = vec![
            "compose".to_owned(),
            "-p".to_owned(),
            project.to_owned(),
            "-f".to_owned(),
            file.display().to_string(),
        ];
        args.extend(rest.iter().map(|s| (*s).to_owned()));
        args
    }

    async fn run(&self, args: Vec<String>, deadline: Duration) -> Result<String, MirrorError> {
        let cmd = Cmd::new(&self.program).args(&args).deadline(deadline);
        let out = self
            .runner
            .run(&cmd)
            .await
            .map_err(|e| MirrorError::Docker {
                args: args.join(" "),
                reason: e.to_string(),
            })?;
        Ok(out.stdout_text())
    }
}

/// `ps --format json` prints a JSON array (Compose ≤ 2.20) or one object
/// per line (later releases); both are read.
pub fn parse_ps(text: &str) -> Result<Vec<Container>, serde_json::Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed);
    }
    trimmed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

#[async_trait]
impl Docker for DockerCli {
    async fn availability(&self) -> Availability {
        let args = ["version", "--format", "{{.Server.Version}}"];
        let cmd = Cmd::new(&self.program).args(args).deadline(QUERY_DEADLINE);
        match self.runner.output(&cmd).await {
            Ok(out) if out.success() => Availability::Running(out.stdout_text().trim().to_owned()),
            Ok(out) => Availability::Stopped(crate::exec::tail(&out.stderr_text())),
            Err(e) if e.is_not_found() => Availability::Missing,
            Err(e) => Availability::Stopped(e.to_string()),
        }
    }

    async fn compose_up(&self, project: &str, file: &Path) -> Result<(), MirrorError> {
        let args = Self::compose(project, file, &["up", "-d", "--remove-orphans"]);
        self.run(args, COMPOSE_DEADLINE).await.map(drop)
    }

    async fn compose_recreate(&self, project: &str, file: &Path) -> Result<(), MirrorError> {
        let args = Self::compose(
            project,
            file,
            &["up", "-d", "--remove-orphans", "--force-recreate"],
        );
        self.run(args, COMPOSE_DEADLINE).await.map(drop)
    }

    async fn compose_down(&self, project: &str, file: &Path) -> Result<(), MirrorError> {
        let args = Self::compose(project, file, &["down", "--remove-orphans"]);
        self.run(args, COMPOSE_DEADLINE).await.map(drop)
    }

    async fn compose_ps(&self, project: &str, file: &Path) -> Result<Vec<Container>, MirrorError> {
        let args = Self::compose(project, file, &["ps", "--all", "--format", "json"]);
        let text = self.run(args.clone(), QUERY_DEADLINE).await?;
        parse_ps(&text).map_err(|e| MirrorError::Docker {
            args: args.join(" "),
            reason: format!("unreadable output: {e}"),
        })
    }

    async fn run_once(&self, args: &[String]) -> Result<(), MirrorError> {
        let mut all = vec!["run".to_owned(), "--rm".to_owned()];
        all.extend(args.iter().cloned());
        self.run(all, COMPOSE_DEADLINE).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ps_output_in_both_formats() {
        let array = r#"[{"Service":"core","State":"running","Health":"healthy"}]"#;
        let lines = "{\"Service\":\"core\",\"State\":\"running\",\"Health\":\"\"}\n{\"Service\":\"log\",\"State\":\"exited\"}\n";
        assert_eq!(super::parse_ps(array).expect("array")[0].health, "healthy");
        let parsed = super::parse_ps(lines).expect("lines");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].state, "exited");
        assert!(super::parse_ps("").expect("empty").is_empty());
    }
}
