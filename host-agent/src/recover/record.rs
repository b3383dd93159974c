//! The record that makes a recovery resumable:
//! `$HOSTCTL_HOME/recover/<cluster>-<scenario>.json` (0600, replaced
//! atomically) holding the source chosen by the first step and the steps
//! done. It exists only while a recovery is unfinished: the run that
//! completes removes it, so the next recovery chooses afresh.

use super::RecoverError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One step done, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDone {
    pub step: String,
    pub secs: u64,
}

/// An unfinished recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub scenario: String,
    pub cluster: String,
    /// What the recovery restores from (a snapshot's file name), once chosen.
    pub source: Option<String>,
    /// When the first attempt started (seconds since the epoch): the total
    /// is measured from here.
    pub started_at_unix: u64,
    pub done: Vec<StepDone>,
    #[serde(skip)]
    path: PathBuf,
}

/// Seconds since the epoch.
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Record {
    /// `<home>/recover/<cluster>-<scenario>.json`.
    pub fn path(home: &Path, cluster: &str, scenario: &str) -> PathBuf {
        home.join("recover")
            .join(format!("{cluster}-{scenario}.json"))
    }

    /// The unfinished recovery of `cluster` to continue, or a new one.
    /// `asked` is the source the caller named, if any: naming another one
    /// than an unfinished run chose is refused ([`RecoverError::OtherSource`])
    /// unless `restart`, which drops the old record. `matches(recorded,
    /// asked)` says whether a name asks for the recorded source (a prefix
    /// of a file name does).
    pub fn open(
        home: &Path,
        scenario: &str,
        cluster: &str,
        asked: Option<&str>,
        restart: bool,
        now: SystemTime,
        matches: impl Fn(&str, &str) -> bool,
    ) -> Result<Record, RecoverError> {
        let path = Self::path(home, cluster, scenario);
        // `--restart` drops the old record unread: it also clears one that
        // no longer parses.
        let read = if restart {
            Err(std::io::ErrorKind::NotFound.into())
        } else {
            std::fs::read(&path)
        };
        let existing = match read {
            Ok(bytes) => Some(serde_json::from_slice::<Record>(&bytes).map_err(|e| {
                RecoverError::BadMetadata {
                    file: path.display().to_string(),
                    reason: format!("{e}; remove it or add --restart"),
                }
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(fsio::Error::at("reading", &path)(e).into()),
        };
        if let Some(mut record) = existing {
            if let (Some(recorded), Some(asked)) = (&record.source, asked)
                && !matches(recorded, asked)
            {
                return Err(RecoverError::OtherSource {
                    cluster: cluster.to_owned(),
                    record: path,
                    recorded: recorded.clone(),
                    asked: asked.to_owned(),
                });
            }
            record.path = path;
            return Ok(record);
        }
        let record = Record {
            scenario: scenario.to_owned(),
            cluster: cluster.to_owned(),
            source: None,
            started_at_unix: unix(now),
            done: Vec::new(),
            path,
        };
        record.save()?;
        Ok(record)
    }

    /// Where this record is kept.
    pub fn file(&self) -> &Path {
        &self.path
    }

    /// Whether an earlier attempt completed anything (a rerun).
    pub fn resumed(&self) -> bool {
        !self.done.is_empty()
    }

    /// How long `step` took when it was done, `None` if it is not done.
    pub fn done_in(&self, step: &str) -> Option<Duration> {
        self.done
            .iter()
            .find(|d| d.step == step)
            .map(|d| Duration::from_secs(d.secs))
    }

    /// Records the chosen source (saved with the step that chose it).
    pub fn choose(&mut self, source: &str) {
        self.source = Some(source.to_owned());
    }

    /// Marks `step` done and saves the record.
    pub fn complete(&mut self, step: &str, took: Duration) -> Result<(), RecoverError> {
        self.done.retain(|d| d.step != step);
        self.done.push(StepDone {
            step: step.to_owned(),
            secs: took.as_secs(),
        });
        self.save()
    }

    /// Time since the first attempt started.
    pub fn elapsed(&self, now: SystemTime) -> Duration {
        Duration::from_secs(unix(now).saturating_sub(self.started_at_unix))
    }

    /// The recovery is complete: the record goes, so the next one starts
    /// fresh.
    pub fn finish(self) -> Result<(), RecoverError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(fsio::sync_parent(&self.path)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(fsio::Error::at("removing", &self.path)(e).into()),
        }
    }

    fn save(&self) -> Result<(), RecoverError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(fsio::Error::at("creating", dir))?;
        }
        Ok(fsio::write_json_atomic(&self.path, self, 0o600)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn prefix(recorded: &str, asked: &str) -> bool {
        recorded.starts_with(asked)
    }

    fn open(
        home: &Path,
        asked: Option<&str>,
        restart: bool,
        now: u64,
    ) -> Result<Record, RecoverError> {
        Record::open(home, "etcd", "app1", asked, restart, at(now), prefix)
    }

    #[test]
    fn a_rerun_continues_with_the_same_snapshot_and_skips_the_steps_done() {
        let home = tempfile::tempdir().unwrap();
        let mut first = open(home.path(), None, false, T0).unwrap();
        assert!(!first.resumed());
        first.choose("20261203T180000Z-rev42.db");
        first.complete("choose", Duration::from_secs(3)).unwrap();
        first.complete("check", Duration::ZERO).unwrap();
        let path = first.file().to_owned();
        assert_eq!(path, home.path().join("recover/app1-etcd.json"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(first); // the run failed in its restore step

        let again = open(home.path(), None, false, T0 + 600).unwrap();
        assert!(again.resumed());
        assert_eq!(again.source.as_deref(), Some("20261203T180000Z-rev42.db"));
        assert_eq!(again.done_in("choose"), Some(Duration::from_secs(3)));
        assert_eq!(again.done_in("restore"), None);
        // Measured from the first attempt.
        assert_eq!(again.elapsed(at(T0 + 700)), Duration::from_secs(700));

        // Naming the same snapshot (or a prefix of it) is no conflict.
        open(home.path(), Some("20261203T180000Z"), false, T0 + 800).unwrap();

        again.finish().unwrap();
        assert!(!path.exists());
        let fresh = open(home.path(), None, false, T0 + 900).unwrap();
        assert_eq!(fresh.source, None);
        assert!(!fresh.resumed());
        assert_eq!(fresh.started_at_unix, T0 + 900);
    }

    #[test]
    fn a_rerun_naming_another_snapshot_is_refused_unless_restart() {
        let home = tempfile::tempdir().unwrap();
        let mut first = open(home.path(), None, false, T0).unwrap();
        first.choose("20261203T180000Z-rev42.db");
        first.complete("choose", Duration::from_secs(1)).unwrap();

        let err = open(
            home.path(),
            Some("20261202T180000Z-rev40.db"),
            false,
            T0 + 5,
        )
        .unwrap_err();
        assert!(matches!(err, RecoverError::OtherSource { .. }), "{err}");
        let text = err.to_string();
        for part in ["20261203T180000Z-rev42.db", "--restart", "app1-etcd.json"] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
        // The record is untouched by the refusal.
        let kept = open(home.path(), None, false, T0 + 6).unwrap();
        assert_eq!(kept.source.as_deref(), Some("20261203T180000Z-rev42.db"));

        let restarted = open(home.path(), Some("20261202T180000Z-rev40.db"), true, T0 + 7).unwrap();
        assert_eq!(restarted.source, None);
        assert!(!restarted.resumed());
        assert_eq!(restarted.started_at_unix, T0 + 7);
    }

    #[test]
    fn a_damaged_record_is_refused_with_its_path_and_the_fix() {
        let home = tempfile::tempdir().unwrap();
        let path = Record::path(home.path(), "app1", "etcd");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{ not json").unwrap();
        let err = open(home.path(), None, false, T0).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("app1-etcd.json") && text.contains("--restart"),
            "{text}"
        );
        // --restart replaces it.
        open(home.path(), None, true, T0).unwrap();
    }
}
