//! Velero's Backups and Restores as the recoveries read them (Velero
//! 1.18's `status` fields): which backup to restore from, and where a
//! Restore stands. Shared by the deleted-resource and lost-cluster
//! scenarios.

use crate::addons::velero::{self, LOCATION, daily_schedule_name};
use serde_json::Value;

/// The newest Completed Backup of hostctl's daily schedule on hostctl's
/// location (by completion time; RFC 3339 in UTC sorts as text), among
/// `backups` (a list of the schedule's label, filtered again here).
pub fn newest_backup(backups: &[Value]) -> Option<String> {
    let schedule = daily_schedule_name();
    backups
        .iter()
        .filter(|b| b["metadata"]["labels"]["velero.io/schedule-name"].as_str() == Some(&schedule))
        .filter(|b| usable(b).is_ok())
        .max_by_key(|b| b["status"]["completionTimestamp"].as_str().unwrap_or(""))
        .and_then(|b| b["metadata"]["name"].as_str().map(str::to_owned))
}

/// Why `backup` cannot be restored from, if it cannot: it must be
/// Completed, on hostctl's location (the cluster's own bucket prefix).
pub fn usable(backup: &Value) -> Result<(), String> {
    let phase = backup["status"]["phase"].as_str().unwrap_or("New");
    if phase != "Completed" {
        return Err(format!("is {phase}, not Completed"));
    }
    match backup["spec"]["storageLocation"].as_str() {
        Some(LOCATION) | None => Ok(()),
        Some(other) => Err(format!(
            "is on location {other:?}, not this cluster's {LOCATION:?}"
        )),
    }
}

/// Where a Restore stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    Running(String),
    Completed {
        warnings: u64,
    },
    /// `Failed`, `PartiallyFailed` or `FailedValidation`: a sentence with
    /// its counts, reason and the next command.
    Failed(String),
}

/// Reads a Restore's `status` (Velero 1.18's phases).
pub fn restore_state(restore: &Value) -> Restore {
    let name = restore["metadata"]["name"].as_str().unwrap_or("?");
    let status = &restore["status"];
    let phase = status["phase"].as_str().unwrap_or("New");
    let count = |k: &str| status[k].as_u64().unwrap_or(0);
    match phase {
        "Completed" => Restore::Completed {
            warnings: count("warnings"),
        },
        "Failed" | "PartiallyFailed" | "FailedValidation" => {
            let mut why = format!(
                "Restore {}/{name} ended {phase} (errors: {}, warnings: {}",
                velero::NAMESPACE,
                count("errors"),
                count("warnings")
            );
            if let Some(reason) = status["failureReason"].as_str().filter(|r| !r.is_empty()) {
                why.push_str(&format!("; {reason}"));
            }
            if let Some(errs) = status["validationErrors"].as_array() {
                let errs: Vec<&str> = errs.iter().filter_map(Value::as_str).collect();
                if !errs.is_empty() {
                    why.push_str(&format!("; {}", errs.join("; ")));
                }
            }
            why.push_str(&format!(
                "): `velero restore describe {name} --details -n {}` says why; the same \
                 command again creates a new Restore",
                velero::NAMESPACE
            ));
            Restore::Failed(why)
        }
        other => Restore::Running(other.to_owned()),
    }
}
