//! `hostctl verify --drill NAME`: failure drills that prove the contracts
//! by breaking what they protect against, on the running environment, and
//! putting it back. Each drill is bounded in time (every wait has a
//! deadline), restores what it stopped even when an observation fails, and
//! records before stopping anything what it is about to stop
//! ([`record::Running`]), so an interrupted drill is restored by running it
//! again. Its result — each promise of the spec against what was observed —
//! is kept under `$HOSTCTL_HOME/drills/` and shown by `status`.
//!
//! - [`mgmt_down`]: stop mgmt's machines; app agents keep reporting, none
//!   of their reports is lost or reordered, the platform's shippers buffer
//!   and drain where installed (C1, C2, C3).
//! - [`vault_down`]: seal Vault; synced secrets stay; unseal with the key
//!   hostctl keeps; they sync again (C3).
//! - [`registry_down`]: stop Harbor; running pods keep running and a
//!   cached image still starts; Harbor comes back healthy (§9.1). Without
//!   managed mirrors it records `not installed`.

pub mod env;
pub mod gateway;
pub mod logs;
pub mod mgmt_down;
pub mod record;
pub mod registry_down;
pub mod vault_down;

use super::Verdict;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The drills there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DrillName {
    MgmtDown,
    VaultDown,
    RegistryDown,
}

impl DrillName {
    pub const ALL: [DrillName; 3] = [
        DrillName::MgmtDown,
        DrillName::VaultDown,
        DrillName::RegistryDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DrillName::MgmtDown => "mgmt-down",
            DrillName::VaultDown => "vault-down",
            DrillName::RegistryDown => "registry-down",
        }
    }

    /// The contracts (or spec sections) the drill proves.
    pub fn proves(self) -> &'static [&'static str] {
        match self {
            DrillName::MgmtDown => &["C1", "C2", "C3"],
            DrillName::VaultDown => &["C3"],
            DrillName::RegistryDown => &["§9.1"],
        }
    }
}

/// One promise of the spec and what the drill saw of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// `C1`, `C2`, `C3` or a spec section.
    pub contract: String,
    /// What the spec promises, in a sentence.
    pub promise: String,
    pub verdict: Verdict,
    /// What was observed.
    pub observed: Vec<String>,
}

impl Observation {
    pub fn new(
        contract: &str,
        promise: &str,
        verdict: Verdict,
        observed: Vec<String>,
    ) -> Observation {
        Observation {
            contract: contract.to_owned(),
            promise: promise.to_owned(),
            verdict,
            observed,
        }
    }
}

/// How a drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every observation holds (or its component is not installed).
    Passed,
    /// Some promise was broken.
    Failed,
    /// What the drill breaks is not there.
    NotInstalled,
}

/// A drill's result, as printed and as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillReport {
    pub drill: DrillName,
    pub outcome: Outcome,
    /// RFC 3339, host clock.
    pub started_at: String,
    pub finished_at: String,
    pub took_seconds: u64,
    /// The steps, in order, as they were done.
    pub steps: Vec<String>,
    pub observations: Vec<Observation>,
}

impl DrillReport {
    /// The outcome of `observations`: failed when any is broken, not
    /// installed when none could be looked at.
    pub fn outcome_of(observations: &[Observation]) -> Outcome {
        if observations.iter().any(|o| o.verdict == Verdict::Broken) {
            Outcome::Failed
        } else if observations
            .iter()
            .all(|o| o.verdict == Verdict::NotInstalled)
        {
            Outcome::NotInstalled
        } else {
            Outcome::Passed
        }
    }
}

/// How long a drill waits for each thing it waits for, and how often it
/// looks. Every wait is bounded; none is a fixed sleep.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Between looks.
    pub poll: Duration,
    /// For one condition (the agents to stop, reports to arrive, …).
    pub deadline: Duration,
    /// Reports each app node must deliver while mgmt is down.
    pub outage_reports: u64,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            poll: Duration::from_millis(500),
            deadline: Duration::from_secs(180),
            outage_reports: 3,
        }
    }
}

/// Why a drill could not run (a broken promise is an [`Observation`], not
/// an error).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("{0}")]
    Precondition(String),
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Record(#[from] crate::fsutil::JsonFileError),
    #[error(transparent)]
    Provider(#[from] crate::provider::ProviderError),
    #[error(transparent)]
    Daemon(#[from] crate::daemon::client::ClientError),
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
}

/// When a drill began, to stamp its report.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    at: std::time::SystemTime,
    clock: std::time::Instant,
}

impl Started {
    pub fn now() -> Started {
        Started {
            at: std::time::SystemTime::now(),
            clock: std::time::Instant::now(),
        }
    }

    /// The report of `drill`, finished now, its outcome from `observations`.
    pub fn report(
        self,
        drill: DrillName,
        steps: Vec<String>,
        observations: Vec<Observation>,
    ) -> DrillReport {
        DrillReport {
            drill,
            outcome: DrillReport::outcome_of(&observations),
            started_at: rfc3339(self.at),
            finished_at: rfc3339(std::time::SystemTime::now()),
            took_seconds: self.clock.elapsed().as_secs(),
            steps,
            observations,
        }
    }
}

/// `t` as RFC 3339.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    certs::rfc3339(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Polls `look` every `pace.poll` until it answers `Some`, for at most
/// `pace.deadline`.
pub async fn until<T, F, Fut>(pace: Pace, mut look: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + pace.deadline;
    loop {
        if let Some(t) = look().await {
            return Some(t);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(pace.poll).await;
    }
}

/// C3 read live on every cluster `up` built (only the app clusters with
/// `app_only`), as one observation of `promise`.
pub async fn secrets_synced(env: &env::DrillEnv<'_>, app_only: bool, promise: &str) -> Observation {
    let clusters = env.clusters(app_only).await;
    if clusters.is_empty() {
        return Observation::new(
            "C3",
            promise,
            Verdict::NotInstalled,
            vec!["no cluster built yet (`hostctl up` builds them)".into()],
        );
    }
    let mut verdict = Verdict::NotInstalled;
    let mut observed = Vec::new();
    for (name, client) in clusters {
        let check = match client {
            Ok(c) => super::live::c3(&c, &name).await,
            Err(e) => {
                observed.push(format!("{name}: API server: {e}"));
                verdict = worst(verdict, Verdict::CannotTell);
                continue;
            }
        };
        verdict = worst(verdict, check.verdict);
        observed.extend(check.evidence.iter().map(|e| format!("{name}: {e}")));
    }
    Observation::new("C3", promise, verdict, observed)
}

/// The more telling of two verdicts: broken, then cannot tell, then holds,
/// then not installed.
pub fn worst(a: Verdict, b: Verdict) -> Verdict {
    let rank = |v| match v {
        Verdict::Broken => 3,
        Verdict::CannotTell => 2,
        Verdict::Holds => 1,
        Verdict::NotInstalled => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Puts back what an unfinished run of `drill` left stopped or sealed.
pub async fn restore(
    env: &mut env::DrillEnv<'_>,
    store: &record::DrillStore,
    drill: DrillName,
    pace: Pace,
    steps: &mut Vec<String>,
) -> Result<(), DrillError> {
    let running = store.running(drill)?;
    if running.is_empty() {
        return Ok(());
    }
    steps.push(format!(
        "an earlier {} did not finish: putting back what it took away",
        drill.as_str()
    ));
    if !running.stopped_machines.is_empty() {
        start_machines(env, &running.stopped_machines, pace, steps).await?;
    }
    if running.sealed_vault {
        vault_down::unseal(env, steps).await?;
    }
    store.clear_running(drill)
}

/// Starts `names` through the provider and waits (bounded) for their
/// agents to connect again.
pub async fn start_machines(
    env: &mut env::DrillEnv<'_>,
    names: &[String],
    pace: Pace,
    steps: &mut Vec<String>,
) -> Result<(), DrillError> {
    for name in names {
        env.provider.start(name).await?;
    }
    let daemon = env.daemon.clone();
    let back = until(pace, || {
        let mut daemon = daemon.clone();
        async move {
            let nodes = daemon.status().await.ok()?.nodes;
            names
                .iter()
                .all(|m| env::node(&nodes, m).is_some_and(|n| n.connected))
                .then_some(())
        }
    })
    .await;
    steps.push(match back {
        Some(()) => format!(
            "started {} again; their agents are connected",
            names.join(", ")
        ),
        None => format!(
            "started {} again; their agents did not connect within {} s",
            names.join(", "),
            pace.deadline.as_secs()
        ),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_verdict_wins_and_decides_the_outcome() {
        assert_eq!(
            worst(Verdict::Holds, Verdict::CannotTell),
            Verdict::CannotTell
        );
        assert_eq!(worst(Verdict::Broken, Verdict::Holds), Verdict::Broken);
        assert_eq!(worst(Verdict::NotInstalled, Verdict::Holds), Verdict::Holds);
        let o = |v| Observation::new("C1", "p", v, vec![]);
        assert_eq!(
            DrillReport::outcome_of(&[o(Verdict::Holds), o(Verdict::NotInstalled)]),
            Outcome::Passed
        );
        assert_eq!(
            DrillReport::outcome_of(&[o(Verdict::Holds), o(Verdict::Broken)]),
            Outcome::Failed
        );
        assert_eq!(
            DrillReport::outcome_of(&[o(Verdict::NotInstalled)]),
            Outcome::NotInstalled
        );
    }
}
